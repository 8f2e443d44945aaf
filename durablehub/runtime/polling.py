"""IdlePoller: how a dequeue loop waits when its queue is empty.

Randomness aside, the reference's BackoffPollingHelper: the wait doubles from the minimum to
the maximum poll interval while the queue stays empty, goes back to the minimum as soon as a
batch arrives, and ends early when this process sends a message the loop should pick up.
"""

from __future__ import annotations

import asyncio
import contextlib


class IdlePoller:
    def __init__(self, min_interval: float, max_interval: float) -> None:
        self._min = min_interval
        self._max = max_interval
        self._delay = min_interval
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Work was just sent: end the current wait."""
        self._wakeup.set()

    def reset(self) -> None:
        """A batch arrived: poll again at once next time the queue is empty."""
        self._delay = self._min

    def back_off(self) -> None:
        """The queue failed: wait the longest interval before trying again."""
        self._delay = self._max

    async def idle(self) -> None:
        """The queue was empty: wait (or until woken), then lengthen the next wait."""
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._delay)
        self._delay = min(self._delay * 2, self._max)
