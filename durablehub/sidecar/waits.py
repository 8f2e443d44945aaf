"""InstanceWaits: the sidecar's ``WaitForInstanceStart``/``Completion`` calls share one poll
per instance id.

However many calls wait on one instance, one task reads its status: as durablehub's own client
does while it exists (from 50 ms, backing off to 1 s: ``PollSchedule``), and backing off to
``missing_poll`` seconds while it does not exist (a wait on an id that does not exist yet keeps
waiting, as in DurableTask.AzureStorage). A start through this sidecar pokes the poll of its id
at once. The poll stops when its last waiter leaves. The storage cost is therefore bounded by the
number of distinct ids waited on (at most ``SidecarLimits.max_waits``): one read a second per
existing instance, one per ``missing_poll`` seconds per missing one, whatever the number of calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic

from durablehub import _client_core as core
from durablehub.models import OrchestrationStatus
from durablehub.runtime.supervision import report_failure
from durablehub.state import OrchestrationState

__all__ = ["InstanceWaits", "WaitTimedOut"]

_LOG = logging.getLogger("durablehub.sidecar")

Reached = Callable[[OrchestrationStatus | None], bool]
Read = Callable[[str], Awaitable[OrchestrationState | None]]


@dataclass(eq=False)
class _Waiter:
    reached: Reached
    future: asyncio.Future[OrchestrationState]


@dataclass(eq=False)
class _Watch:
    waiters: set[_Waiter] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last: OrchestrationState | None = None  # the last state read (None: not found)


class WaitTimedOut(TimeoutError):
    """The wait's time passed first; ``last`` is the last state its poll read (None: none)."""

    def __init__(self, last: OrchestrationState | None) -> None:
        super().__init__("the wait timed out")
        self.last = last


class InstanceWaits:
    """The waits of one task hub. ``read`` reads an instance's state without its payloads."""

    def __init__(self, read: Read, *, missing_poll: float) -> None:
        self._read = read
        self._missing_poll = missing_poll
        self._watches: dict[str, _Watch] = {}

    @property
    def polling(self) -> int:
        """Instance ids being polled (one task each)."""
        return len(self._watches)

    async def wait(self, instance_id: str, reached: Reached, timeout: float) -> OrchestrationState:
        """The instance's state once ``reached(status)``, read without payloads.

        Raises:
            WaitTimedOut: ``timeout`` seconds passed first.
        """
        watch = self._watches.get(instance_id)
        if watch is None:
            watch = self._watches[instance_id] = _Watch()
            watch.task = asyncio.create_task(self._poll(instance_id, watch), name=f"wait for {instance_id!r}")
            watch.task.add_done_callback(report_failure)
        waiter = _Waiter(reached, asyncio.get_running_loop().create_future())
        if watch.last is not None and reached(watch.last.runtime_status):
            return watch.last
        watch.waiters.add(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            raise WaitTimedOut(watch.last) from None
        finally:
            watch.waiters.discard(waiter)
            if not watch.waiters and watch.task is not None:
                watch.task.cancel()
                if self._watches.get(instance_id) is watch:
                    del self._watches[instance_id]

    def poke(self, instance_id: str) -> None:
        """The instance changed through this sidecar (it was started): read it now."""
        watch = self._watches.get(instance_id)
        if watch is not None:
            watch.wake.set()

    async def _poll(self, instance_id: str, watch: _Watch) -> None:
        """Read, answer the waiters it satisfies, sleep; until cancelled. Any failure (a storage
        outage, a state it cannot schedule from) is logged once and the poll goes on: it is
        shared, and its end would strand every waiter until its own timeout."""
        began = monotonic()
        schedule = core.PollSchedule()
        missing_delay = core.POLL_FIRST_SECONDS
        failed = False
        while True:
            watch.wake.clear()
            try:
                state = await self._read(instance_id)
                watch.last = state
                for waiter in list(watch.waiters):
                    if (
                        state is not None
                        and waiter.reached(state.runtime_status)
                        and not waiter.future.done()
                    ):
                        waiter.future.set_result(state)
                if state is None:
                    delay, missing_delay = missing_delay, min(missing_delay * 2, self._missing_poll)
                else:
                    age = (datetime.now(UTC) - state.created_at).total_seconds() if state.created_at else None
                    delay = schedule.after(state.runtime_status, waited=monotonic() - began, age=age)
                    missing_delay = core.POLL_FIRST_SECONDS
                failed = False
            except Exception as exc:  # the waiters keep waiting, the poll retries
                if not failed:
                    _LOG.warning("wait for %r: polling its status failed (retrying): %r", instance_id, exc)
                failed, delay = True, self._missing_poll
            try:
                await asyncio.wait_for(watch.wake.wait(), delay)
            except TimeoutError:
                pass
