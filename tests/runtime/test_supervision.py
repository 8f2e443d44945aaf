"""A worker's long-lived loops survive an unexpected error: it is logged, the loop goes on."""

from __future__ import annotations

import asyncio

import pytest

from durablehub.runtime.balancer import PartitionBalancer
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.supervision import supervise
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub


async def test_a_loop_that_raises_is_logged_and_started_again(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"bug {len(runs)}")

    await asyncio.wait_for(supervise(loop, name="test loop"), timeout=10)
    assert runs == [0, 1, 2]
    failures = [r for r in caplog.records if "test loop failed unexpectedly" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)


async def test_cancelling_a_supervised_loop_stops_it() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = supervise(loop, name="forever")
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.azurite
async def test_lease_renewal_goes_on_after_a_callback_raises(
    settings: TaskHubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """Another worker steals one partition; the loser's ``on_lost`` raises (a bug). Renewal of
    the other leases must go on: a dead renewal loop would let all of them expire."""
    options = WorkerOptions(lease_renew_seconds=1.0, balance_interval_seconds=1.0)
    lost: list[str] = []

    async def nothing(partition_id: str) -> None:
        return None

    async def on_lost(partition_id: str) -> None:
        lost.append(partition_id)
        raise RuntimeError("a bug in on_lost")

    async with AsyncTaskHub(settings) as hub:
        await hub.create()
        balancer = PartitionBalancer(
            hub, options, "worker-a", on_acquired=nothing, on_lost=on_lost, on_drain=nothing
        )
        await balancer.balance()
        assert len(balancer.owned) == 4
        balancer.start()
        try:
            stolen = settings.names.control_queue(0)
            assert await hub.leases.steal(stolen, "worker-b", duration=options.lease_duration) is not None
            for _ in range(100):
                if lost:
                    break
                await asyncio.sleep(0.1)
            assert lost == [stolen]
            await asyncio.sleep(options.lease_duration_seconds + 3)  # past the leases' expiry
            states = {s.lease.partition_id: s for s in await hub.leases.list()}
            for partition_id in settings.names.control_queues[1:]:
                state = states[partition_id]
                assert state.leased and state.lease.owner == "worker-a", f"{partition_id} expired"
        finally:
            await balancer.stop()
    assert any("failed unexpectedly" in r.getMessage() for r in caplog.records)
