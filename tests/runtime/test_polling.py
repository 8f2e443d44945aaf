"""IdlePoller: when a dequeue loop receives again. A partial batch means the queue was just
emptied: asking again at once would mostly come back empty (a request for nothing), so the loop
waits the minimum interval first; a full batch may have more behind it and goes on at once."""

from __future__ import annotations

import asyncio

from durablehub.runtime.outage import StorageOutage
from durablehub.runtime.polling import IdlePoller


async def _timed_poll(poller: IdlePoller, batch: list[int], *, full: int) -> tuple[list[int], float]:
    loop = asyncio.get_running_loop()

    async def receive() -> list[int]:
        return batch

    started = loop.time()
    got = await poller.poll(receive, outage=StorageOutage(), what="receiving", full=full)
    return got, loop.time() - started


async def test_a_partial_batch_waits_the_minimum_interval_before_the_next_receive() -> None:
    poller = IdlePoller(0.2, 5.0)
    got, waited = await _timed_poll(poller, [1, 2], full=32)
    assert got == [1, 2] and waited >= 0.19  # a sleep never ends early


async def test_a_full_batch_goes_on_at_once_and_a_wake_ends_the_wait() -> None:
    poller = IdlePoller(30.0, 60.0)
    got, waited = await _timed_poll(poller, list(range(32)), full=32)
    assert got == list(range(32)) and waited < 29  # far from the 30 s a wait would take

    async def wake_soon() -> None:
        await asyncio.sleep(0.05)
        poller.wake()  # this process sent something to the queue

    waking = asyncio.create_task(wake_soon())
    got, waited = await _timed_poll(poller, [1], full=32)
    await waking
    assert got == [1] and waited < 29


async def test_after_a_partial_batch_an_empty_queue_is_polled_again_soon() -> None:
    """The wait after a partial batch does not lengthen the back-off: the next empty receive
    waits the minimum again, not the doubled interval."""
    poller = IdlePoller(0.1, 5.0)
    await _timed_poll(poller, [1], full=32)
    _, waited = await _timed_poll(poller, [], full=32)
    assert 0.09 <= waited < 4.0
