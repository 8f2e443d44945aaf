"""IdlePoller: when a dequeue loop receives again. A partial batch means the queue was just
emptied: asking again at once would mostly come back empty (a request for nothing), so the next
receive waits the minimum interval first; a full batch may have more behind it and the next
receive goes at once. Either way the batch itself comes back at once."""

from __future__ import annotations

import asyncio

from durablehub.runtime.outage import StorageOutage
from durablehub.runtime.polling import IdlePoller

CEILING = 600.0


class Queue:
    """Hands out the batches given, and notes the loop's time of each receive."""

    def __init__(self, *batches: list[int]) -> None:
        self._batches = list(batches)
        self.received_at: list[float] = []

    async def receive(self) -> list[int]:
        self.received_at.append(asyncio.get_running_loop().time())
        return self._batches.pop(0)


async def poll(poller: IdlePoller, queue: Queue) -> list[int]:
    return await poller.poll(queue.receive, outage=StorageOutage(), what="receiving", full=32)


async def test_a_partial_batch_comes_back_at_once_and_the_next_receive_waits() -> None:
    loop = asyncio.get_running_loop()
    quick = IdlePoller(30.0, 60.0)
    started = loop.time()
    assert await poll(quick, Queue([1, 2])) == [1, 2]
    assert loop.time() - started < 29  # not held for the 30 s minimum interval

    poller, queue = IdlePoller(0.2, 5.0), Queue([1, 2], [3])
    assert await poll(poller, queue) == [1, 2]
    assert await poll(poller, queue) == [3]
    assert queue.received_at[1] - queue.received_at[0] >= 0.19  # a sleep never ends early


async def test_after_a_full_batch_the_next_receive_goes_at_once() -> None:
    poller, queue = IdlePoller(30.0, 60.0), Queue(list(range(32)), [32])
    await poll(poller, queue)
    await poll(poller, queue)
    assert queue.received_at[1] - queue.received_at[0] < 29


async def test_a_wake_ends_the_wait_after_a_partial_batch() -> None:
    poller, queue = IdlePoller(30.0, 60.0), Queue([1], [2])
    await poll(poller, queue)

    async def wake_soon() -> None:
        await asyncio.sleep(0.05)
        poller.wake()  # this process sent something to the queue

    waking = asyncio.create_task(wake_soon())
    assert await poll(poller, queue) == [2]
    await waking
    assert queue.received_at[1] - queue.received_at[0] < 29


async def test_after_a_partial_batch_an_empty_queue_is_polled_again_soon() -> None:
    """The wait after a partial batch does not lengthen the back-off: the empty receive that
    follows waits the minimum again, not a doubled interval."""
    poller, queue = IdlePoller(0.1, 5.0), Queue([1], [], [2])
    await poll(poller, queue)
    await poll(poller, queue)
    await poll(poller, queue)
    assert 0.09 <= queue.received_at[2] - queue.received_at[1] < 4.0


async def empty() -> list[int]:
    return []


async def test_a_fast_poll_window_keeps_a_busy_queue_at_the_minimum_interval() -> None:
    """``fast_poll_seconds``: for that long after its last batch a queue is polled every
    minimum interval, with no back-off (lower latency under load, more receives); after it,
    the back-off doubles from the minimum as before."""
    loop = asyncio.get_running_loop()
    poller = IdlePoller(0.01, CEILING, fast=1.0)
    await poll(poller, Queue([1]))
    began = loop.time()
    for _ in range(5):
        await poller.poll(empty, outage=StorageOutage(), what="receiving")
        assert poller.next_delay == 0.01
    assert loop.time() - began < 1.0  # still inside the window (a guard: five 10 ms waits)
    await asyncio.sleep(1.0 - (loop.time() - began))
    await poller.poll(empty, outage=StorageOutage(), what="receiving")
    await poller.poll(empty, outage=StorageOutage(), what="receiving")
    assert poller.next_delay == 0.04  # the window has ended: backing off from the minimum


async def test_without_a_fast_poll_window_an_empty_queue_backs_off_at_once() -> None:
    poller = IdlePoller(0.01, CEILING)
    await poll(poller, Queue([1]))
    for _ in range(3):
        await poller.poll(empty, outage=StorageOutage(), what="receiving")
    assert poller.next_delay == 0.08
