"""IdlePoller: how a dequeue loop waits when its queue is empty.

Randomness aside, the reference's BackoffPollingHelper: the wait doubles from the minimum to
the maximum poll interval while the queue stays empty, goes back to the minimum as soon as a
batch arrives, and ends early when this process sends a message the loop should pick up.

Two differences. ``hurry``: a sibling loop of the same worker just received a new instance,
and starts come in bursts and sequences (a client starting one instance after another, a
parent its children), the next one usually on another partition: the current wait ends
within the minimum interval and the back-off starts again from there, instead of the next
start waiting up to the ceiling on a partition that happened to be idle. It costs up to
about 4 more receives per idle sibling and burst (backing off again), none while idle. A wait
with at most four minimum intervals left is not shortened: it ends soon anyway, and under a
steady stream of starts (each hurrying every sibling) cutting it would add a receive per
start per sibling and pick nothing up sooner. And after a partial
batch (fewer messages than asked for) the queue was just emptied, so the next receive waits
the minimum interval instead of going at once; an immediate one mostly comes back empty, a
request for nothing (under a trickle of messages, one per message). A full batch may have
more behind it and goes on at once.

``fast``: the latency/cost setting for busy queues (``fast_poll_seconds``, off by default).
For that long after its last batch a queue is polled every minimum interval instead of
backing off: under a steady stream of starts from other processes a start waits half a
minimum interval for its receive instead of half a backed-off one, for up to 1/``min`` receives
a second per queue while the stream lasts; an idle queue costs what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.outage import StorageOutage

T = TypeVar("T")
# A hurry shortens only a wait with more than this many minimum intervals left (see above).
_HURRY_ABOVE = 4


class IdlePoller:
    def __init__(self, min_interval: float, max_interval: float, *, fast: float = 0.0) -> None:
        self._min = min_interval
        self._max = max_interval
        self._fast = fast
        self._last_batch = float("-inf")  # loop time of the last batch received
        self._delay = min_interval
        self._wakeup = asyncio.Event()
        self._after_partial = False  # the last receive emptied the queue: wait before the next
        self._woken = False
        self._hurried = False

    @classmethod
    def of_worker(cls, options: WorkerOptions) -> IdlePoller:
        """The poller of one of a worker's queues, with its polling options."""
        return cls(
            options.min_poll_interval_seconds,
            options.max_poll_interval_seconds,
            fast=options.fast_poll_seconds,
        )

    def wake(self) -> None:
        """Work was just sent: end the current wait."""
        self._woken = True
        self._wakeup.set()

    def hurry(self) -> None:
        """Work is likely on its way: poll within the minimum interval, then back off from it
        (unless the poller polls within four minimum intervals anyway)."""
        self._hurried = True
        self._wakeup.set()

    @property
    def next_delay(self) -> float:
        """How long the next idle wait lasts (unless woken or hurried)."""
        return self._delay

    def reset(self) -> None:
        """A batch arrived: poll again at once next time the queue is empty."""
        self._delay = self._min

    def back_off(self) -> None:
        """The queue failed: wait the longest interval before trying again."""
        self._delay = self._max

    async def idle(self) -> None:
        """The queue was empty: wait (or until woken), then lengthen the next wait (unless
        a batch came within the ``fast`` window)."""
        delay = self._delay
        if self._hurried and delay > _HURRY_ABOVE * self._min:  # hurried between two waits
            delay = self._min
        if asyncio.get_running_loop().time() - self._last_batch < self._fast:
            delay = self._min
            self._delay = self._min
        else:
            self._delay = min(delay * 2, self._max)
        self._hurried = False
        await self._wait(delay, hurry_shortens=True)

    async def _pause(self) -> None:
        """Wait the minimum interval (or until woken), leaving the back-off where it is; a
        hurry does not shorten it: it is the minimum already."""
        await self._wait(self._min, hurry_shortens=False)
        self._hurried = False

    async def _wait(self, seconds: float, *, hurry_shortens: bool) -> None:
        """Wait ``seconds`` or until woken; with ``hurry_shortens``, a hurry ends the wait
        within the minimum interval and restarts the back-off from it."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        self._woken = False
        while not self._woken and (remaining := until - loop.time()) > 0:
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=remaining)
            if hurry_shortens and self._hurried:
                self._hurried = False
                if until - loop.time() > _HURRY_ABOVE * self._min:
                    until = loop.time() + self._min
                    self._delay = min(self._min * 2, self._max)

    async def poll(
        self,
        receive: Callable[[], Awaitable[list[T]]],
        *,
        outage: StorageOutage,
        what: str,
        full: int | None = None,
    ) -> list[T]:
        """One receive of a dequeue loop. A failure is logged (``what`` failed) and answered
        with the longest wait, an empty queue with the idle wait; either way [] comes back. A
        batch comes back at once; after one of fewer than ``full`` messages, the next receive
        waits the minimum interval first."""
        if self._after_partial:
            self._after_partial = False
            await self._pause()
        try:
            batch = await receive()
        except Exception as exc:
            outage.failed(f"{what} failed; backing off", exc)
            self.back_off()
            batch = []
        else:
            outage.succeeded()
        if batch:
            self._last_batch = asyncio.get_running_loop().time()
            self.reset()
            self._after_partial = full is not None and len(batch) < full
        else:
            await self.idle()
        return batch
