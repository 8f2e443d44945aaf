"""How ``ctx.is_patched`` decisions are stored: a ``GenericEvent`` history row.

DurableTask.Core knows ``GenericEvent`` (a ``Data`` string) and skips it on replay, as do
the Durable Task SDKs, so a hub with patch records stays readable by every tool and
worker. Its data is ``{"durablehub.patches": ["name", ...]}``: the patches an episode took.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from durablehub.engine import history as ev

__all__ = ["PATCHES_KEY", "patch_record", "patches_recorded"]

PATCHES_KEY = "durablehub.patches"


def patch_record(names: Sequence[str], *, now: datetime) -> ev.GenericEvent:
    """The history event recording that an episode took the patches ``names``."""
    return ev.GenericEvent(timestamp=now, data=json.dumps({PATCHES_KEY: list(names)}, separators=(",", ":")))


def patches_recorded(events: Iterable[ev.HistoryEvent]) -> set[str]:
    """Every patch name ``events`` record as taken (other generic events are ignored)."""
    found: set[str] = set()
    for event in events:
        if not isinstance(event, ev.GenericEvent) or not event.data or PATCHES_KEY not in event.data:
            continue
        try:
            names = json.loads(event.data).get(PATCHES_KEY)
        except (ValueError, AttributeError):
            continue  # someone else's generic event
        if isinstance(names, list):
            found.update(n for n in names if isinstance(n, str))
    return found
