"""How soon a start is picked up when the partition's poller has backed off to its ceiling.

A new instance arriving on one partition of a worker hurries the worker's other partitions:
their pollers poll again within the minimum interval and back off from there. Starts come in
bursts and sequences (a client starting one instance after another, a parent its children),
and the next one usually lands on another partition: without this it waits up to the ceiling
there, however busy the worker. And a client in the worker's process wakes the partition it
sends to: no wait at all."""

from __future__ import annotations

import asyncio
import time

from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.outage import StorageOutage
from durablehub.runtime.polling import IdlePoller
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import partition_index
from durablehub.worker import Worker
from tests.runtime.apps import app

CEILING = 600.0  # a backed-off poller's wait: far beyond the guards below


def on_partition(prefix: str, index: int, count: int) -> str:
    return next(f"{prefix}-{n}" for n in range(1000) if partition_index(f"{prefix}-{n}", count) == index)


async def test_a_hurried_poller_ends_its_long_wait_and_backs_off_from_the_minimum() -> None:
    receives: list[int] = []

    async def empty() -> list[int]:
        receives.append(1)
        return []

    poller = IdlePoller(0.01, CEILING)
    poller.back_off()  # as after a failure: the next empty receive waits the ceiling
    polling = asyncio.create_task(poller.poll(empty, outage=StorageOutage(), what="receiving"))
    while not receives:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert not polling.done()  # waiting the ceiling
    poller.hurry()
    await asyncio.wait_for(polling, timeout=60)  # a guard: unhurried, it waits 600 s
    assert poller.next_delay == 0.02  # the back-off starts again from the minimum


async def test_a_hurry_leaves_a_poller_that_polls_soon_anyway_alone() -> None:
    """Under a steady stream of starts every partition's poller is in a short wait already: a
    hurry there would only add a receive (one per start per sibling), not pick anything up
    sooner. A wait of at most four minimum intervals is left to run, its back-off kept."""
    receives: list[float] = []
    loop = asyncio.get_running_loop()

    async def empty() -> list[int]:
        receives.append(loop.time())
        return []

    poller = IdlePoller(0.1, CEILING)
    for _ in range(2):  # waits of 0.1 and 0.2 s: the next is 0.4 s, four minimum intervals
        await poller.poll(empty, outage=StorageOutage(), what="receiving")
    polling = asyncio.create_task(poller.poll(empty, outage=StorageOutage(), what="receiving"))
    await asyncio.sleep(0.05)
    poller.hurry()
    await polling
    assert loop.time() - receives[-1] >= 0.4 - 1e-3  # a sleep never ends early
    assert poller.next_delay == 0.8  # backing off on


def backed_off(worker: Worker, settings: TaskHubSettings, partitions: list[int]) -> None:
    """Those partitions' pollers wait the ceiling (600 s) from their next empty receive on."""
    loop, processors = worker._loop, worker._processors  # noqa: SLF001 - the pollers under test
    assert loop is not None and len(processors) == 4
    for index in partitions:
        loop.call_soon_threadsafe(processors[settings.names.control_queue(index)]._poller.back_off)  # noqa: SLF001
    time.sleep(3)  # their waits in progress end: the next ones are the long ones


def test_a_client_in_the_workers_process_wakes_the_partition_it_starts_on(
    settings: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    options = WorkerOptions(min_poll_interval_seconds=0.05, max_poll_interval_seconds=CEILING)
    with Worker(app, settings, options=options) as worker:
        backed_off(worker, settings, [0, 1, 2, 3])
        iid = client.schedule_new_orchestration("chain", input=2, instance_id=on_partition("near", 2, 4))
        state = client.wait_for_orchestration_completion(iid, timeout=60)  # a guard: unwoken, 600 s
        assert state.serialized_output == "1"
        event_target = client.schedule_new_orchestration(
            "waits_for_event", instance_id=on_partition("ev", 3, 4)
        )
        client.wait_for_orchestration_start(event_target, timeout=60)
        backed_off(worker, settings, [3])
        client.raise_orchestration_event(event_target, "go", data=5)
        assert client.wait_for_orchestration_completion(event_target, timeout=60).get_output() == 5


def test_a_start_on_one_partition_hurries_the_workers_other_partitions(
    settings: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    first, second = on_partition("first", 0, 4), on_partition("second", 1, 4)
    options = WorkerOptions(min_poll_interval_seconds=0.05, max_poll_interval_seconds=CEILING)
    with Worker(app, settings, options=options) as worker:
        worker._nearby.close()  # noqa: SLF001 - as if the client were in another process
        # Every partition but the first backs off to the ceiling: a start there waits 600 s.
        backed_off(worker, settings, [1, 2, 3])
        client.wait_for_orchestration_completion(
            client.schedule_new_orchestration("chain", input=1, instance_id=first), timeout=60
        )
        # The start on partition 0 hurried partition 1: the second start is picked up soon.
        second_id = client.schedule_new_orchestration("chain", input=2, instance_id=second)
        state = client.wait_for_orchestration_completion(second_id, timeout=60)
        assert state.serialized_output == "1"


def test_a_fast_poll_window_keeps_a_partition_that_received_a_start_at_the_minimum(
    settings: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    """``fast_poll_seconds``: after a start from another process, its partition goes on
    polling every minimum interval (the next start there is picked up within it) while the
    partitions that received nothing back off as before."""
    started = on_partition("busy", 0, 4)
    options = WorkerOptions(
        min_poll_interval_seconds=0.05, max_poll_interval_seconds=CEILING, fast_poll_seconds=600
    )
    with Worker(app, settings, options=options) as worker:
        worker._nearby.close()  # noqa: SLF001 - as if the client were in another process
        client.wait_for_orchestration_completion(
            client.schedule_new_orchestration("chain", input=1, instance_id=started), timeout=60
        )
        time.sleep(2)  # time for about five doublings of a back-off
        pollers = [worker._processors[settings.names.control_queue(i)]._poller for i in (0, 1)]  # noqa: SLF001
        assert pollers[0].next_delay == 0.05
        assert pollers[1].next_delay > 0.05
