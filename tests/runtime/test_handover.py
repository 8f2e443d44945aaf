"""Partitions move between live workers by drain-then-release, not by a steal mid-episode."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import LeaseLostError
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import wait_until
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def assert_history_has_no_duplicates(client: DurableClient, instance_id: str) -> None:
    history = client.get_orchestration_history(instance_id)
    scheduled = Counter(e.event_id for e in history if isinstance(e, ev.TaskScheduled))
    completed = Counter(e.task_scheduled_id for e in history if isinstance(e, ev.TaskCompleted))
    ends = [e for e in history if isinstance(e, ev.ExecutionCompleted)]
    assert max(scheduled.values()) == 1 and max(completed.values()) == 1, instance_id
    assert set(completed) == set(scheduled) and len(ends) == 1, instance_id


def test_a_new_worker_is_handed_partitions_and_a_stopping_one_hands_over_the_rest(
    settings: TaskHubSettings, client: DurableClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durablehub")
    first = dh.Worker(app, settings, worker_id="worker-a").start()
    second: dh.Worker | None = None
    try:
        assert len(first.owned_partitions) == 4
        ids = [
            client.schedule_new_orchestration("slow_chain", input={"steps": 8, "seconds": 0.3})
            for _ in range(24)
        ]
        ids += [client.schedule_new_orchestration("chain", input=40) for _ in range(4)]
        time.sleep(1.0)  # episodes in flight on every partition

        second = dh.Worker(app, settings, worker_id="worker-b").start()
        wait_until(lambda: len(second.owned_partitions) == 2, 30, "the new worker to own its share")
        assert len(first.owned_partitions) == 2
        # Asked, drained, released, received: no lease was stolen, none expired (the counts say
        # so, not the time taken: the machine may be loaded).
        assert (second.partition_moves.received, second.partition_moves.stolen) == (2, 0)
        assert (first.partition_moves.handed_over, first.partition_moves.lost) == (2, 0)

        first.stop()  # graceful: drains and releases its two partitions
        wait_until(lambda: len(second.owned_partitions) == 4, 15, "the last worker to own everything")

        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=90)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED, iid
        assert [client.get_orchestration_state(i).get_output() for i in ids] == [8] * 24 + [780] * 4
        for iid in ids:
            assert_history_has_no_duplicates(client, iid)
        assert second.partition_moves.lost == 0
    finally:
        first.stop()
        if second is not None:
            second.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "committed by another worker" in m or "lost partition" in m]
    assert sum("asked worker-a to hand partition" in m for m in messages) == 2


def test_an_owner_that_ignores_the_request_is_stolen_from_after_one_lease_period(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    # An older worker: it renews its leases but knows nothing of handover requests.
    pids = settings.names.control_queues
    leases = [hub.leases.acquire(pid, "old-worker", duration=timedelta(seconds=15)) for pid in pids[:3]]
    stop = threading.Event()

    def keep_renewing() -> None:
        while not stop.wait(2):
            for lease in leases:
                with contextlib.suppress(LeaseLostError):
                    hub.leases.renew(lease)

    renewer = threading.Thread(target=keep_renewing, daemon=True)
    renewer.start()
    try:
        with dh.Worker(app, settings, worker_id="worker-b") as worker:
            assert worker.owned_partitions == [pids[3]]
            asked = time.monotonic()
            wait_until(lambda: len(worker.owned_partitions) == 2, 40, "the fallback steal")
            waited = time.monotonic() - asked
            assert waited >= 14  # it waited one lease period for a release, then stole
            assert (worker.partition_moves.received, worker.partition_moves.stolen) == (0, 1)
    finally:
        stop.set()
        renewer.join()


async def test_a_partition_seen_mid_release_still_counts_as_received(settings: TaskHubSettings) -> None:
    """A release is two requests: the content is rewritten without an owner, then the blob lease
    is released. A worker that asked for the partition and lists it between the two must keep
    its request, and take the partition as received (not forget it and count an acquire)."""
    from durablehub.runtime.balancer import PartitionBalancer
    from durablehub.runtime.options import WorkerOptions
    from durablehub.taskhub.aio.hub import AsyncTaskHub
    from durablehub.taskhub.aio.leases import PartitionLease

    async def nothing(partition_id: str) -> None:
        return None

    options = WorkerOptions(lease_renew_seconds=1.0, balance_interval_seconds=1.0)
    async with AsyncTaskHub(settings) as hub:
        await hub.create()
        held = [
            await hub.leases.acquire(p, "worker-a", duration=options.lease_duration)
            for p in settings.names.control_queues
        ]
        asking = PartitionBalancer(
            hub, options, "worker-b", on_acquired=nothing, on_lost=nothing, on_drain=nothing
        )
        await asking.balance()  # takes nothing (all leased), asks worker-a for one
        [(asked, _request)] = asking._requested.items()
        lease = next(h for h in held if h is not None and h.partition_id == asked)

        # worker-a's release, first half: the content no longer names an owner, the lease still holds.
        released = PartitionLease(partition_id=asked, owner=None, token=None, epoch=lease.epoch)
        await hub.leases._blob(asked).upload_blob(
            released.to_json(),
            overwrite=True,
            lease=lease.token,
            metadata={"dhepoch": str(lease.epoch), "dhowner": "", "dhtoken": ""},
        )
        await asking.balance()
        await hub.leases.release(lease)  # second half
        await asking.balance()
        assert asked in asking.owned
        assert (asking.moves.received, asking.moves.stolen) == (1, 0)
        await asking.release_all()
