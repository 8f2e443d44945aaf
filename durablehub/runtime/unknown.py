"""What a worker does with an orchestration, activity or entity its App does not register.

Every worker on a task hub takes any of its partitions and any work item, so every worker must
be able to run everything on the hub. One deployed with less (mid rolling deployment, or beside
other code on the same hub) meets names it does not know. ``FAIL`` (the default, as before)
fails the instance, the activity's task or the entity's operations, naming what is registered.
``REJECT`` hands the work back untouched, as the versioning REJECT strategy does
(``durablehub.runtime.versions``): an orchestration's or entity's messages wait until a worker
that has the code owns their partition (a partition's messages go to its owner only); an
activity's work item goes back to the shared queue for any worker to take (past half
``max_dequeue_count`` hand-backs as a fresh copy, ``runtime/resend.py``, so it is never taken
for a poison message however long no worker has the code). Either way
the worker says so once per name and task hub, not once per message.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Literal

__all__ = ["UnknownFunctionStrategy", "UnknownFunctions"]

_LOG = logging.getLogger("durablehub.worker")

Kind = Literal["orchestrator", "activity", "entity"]

_FAILS = {
    "orchestrator": "its instances fail",
    "activity": "its calls fail",
    "entity": "its operations fail and its signals are dropped",
}
_HANDED_BACK = {
    "orchestrator": "its instances' messages are handed back, nothing written, until a worker "
    "that has it owns their partition",
    "activity": "its work items are handed back for another worker to take",
    "entity": "its messages are handed back, nothing written, until a worker that has it owns "
    "their partition",
}


class UnknownFunctionStrategy(StrEnum):
    """``DURABLEHUB_UNKNOWN_FUNCTION_STRATEGY``: fail the work (the default) or hand it back."""

    FAIL = "fail"
    REJECT = "reject"


class UnknownFunctions:
    """One worker's strategy for names its App lacks, and the names it has reported."""

    def __init__(self, strategy: UnknownFunctionStrategy, *, task_hub: str | None) -> None:
        self.strategy = strategy
        self._task_hub = task_hub
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # orchestrator lookups run on user-code threads

    def met(self, kind: Kind, name: str) -> bool:
        """Note that this worker has no ``kind`` named ``name``; True if the work is to be
        handed back (``REJECT``), False if it fails."""
        reject = self.strategy is UnknownFunctionStrategy.REJECT
        with self._lock:
            if (kind, name) in self._said:
                return reject
            self._said.add((kind, name))
        hub = f" on task hub {self._task_hub!r}" if self._task_hub else ""
        if reject:
            outcome = _HANDED_BACK[kind]
        else:
            outcome = f"{_FAILS[kind]} (DURABLEHUB_UNKNOWN_FUNCTION_STRATEGY=reject hands them back instead)"
        _LOG.warning(
            "this worker has no %s named %r%s: %s; every worker on a task hub must be able to run "
            "every orchestration, activity and entity on it (deploy the same code to each, or give "
            "other code a task hub of its own)",
            kind,
            name,
            hub,
            outcome,
        )
        return reject
