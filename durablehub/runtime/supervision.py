"""supervise: keep a worker's long-lived loops running, and say so when one fails.

A worker is a handful of loops that must never stop while it runs: lease renewal and
balancing, each owned partition's dequeue and visibility renewal, the activity dequeue. Each
handles the storage errors it expects; anything else is a bug, and an unguarded task that
raises just ends, silently -- a worker that stops renewing its leases loses its partitions, one
that stops dequeuing holds a partition nobody serves. Under ``supervise`` a loop that raises is
logged with its traceback and started again after a growing pause (capped), until it is
cancelled (the worker stopping); a loop that returns has finished its job. Short-lived tasks
(an instance's episodes, a work item, a hand-over) are not restarted -- their messages come
back by themselves -- but ``report_failure`` logs what ended one unexpectedly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

_LOG = logging.getLogger("durablehub.worker")
FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 10.0


def supervise(loop: Callable[[], Awaitable[None]], *, name: str) -> asyncio.Task[None]:
    """Run ``loop()`` as a task; restart it whenever it raises (logging why)."""
    return asyncio.create_task(_supervised(loop, name), name=name)


async def _supervised(loop: Callable[[], Awaitable[None]], name: str) -> None:
    delay = FIRST_RESTART_DELAY_SECONDS
    while True:
        try:
            await loop()
            return
        except Exception:
            _LOG.exception("%s failed unexpectedly; restarting it in %.1f s", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)


def report_failure(task: asyncio.Task[Any]) -> None:
    """A done-callback: log the exception that ended ``task``, if any (else it is lost)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        _LOG.error("%s failed unexpectedly", task.get_name(), exc_info=error)
