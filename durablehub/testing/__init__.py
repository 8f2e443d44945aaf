"""Helpers for testing orchestrations without storage.

``durablehub.testing.history`` builds history events (``h.started("Chain")``,
``h.task_completed(0, result=1)``, ...); ``replay`` runs an orchestrator over them.
"""

from durablehub.testing.history import T0, replay

__all__ = ["T0", "replay"]
