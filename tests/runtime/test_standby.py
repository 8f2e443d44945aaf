"""A standby worker (the sidecar's) whose activation fails half way activates on the next try."""

from __future__ import annotations

import pytest

import durablehub as dh
from durablehub.async_client import AsyncDurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.testing.faults import Fault, FaultInjector
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


async def test_an_activation_that_failed_after_taking_a_lease_is_really_done_on_the_retry(
    settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    # The first lease is taken, the second acquire fails (a storage blip while the first SDK
    # worker connects): activate_async raises with one partition already owned.
    injector = FaultInjector(
        1.0, faults=[Fault.SERVER_ERROR], services=["blob"], operations=["blob.lease"], skip=1, limit=1
    )
    injector.active = False
    worker = dh.Worker(
        app,
        settings.model_copy(update={"retry_total": 0}),
        worker_id="standby-a",
        standby=True,
        storage_policies=[injector.async_policy],
    )
    await worker.start_async()
    try:
        injector.active = True
        with pytest.raises(Exception, match="InternalError|500"):
            await worker.activate_async()
        assert injector.total == 1  # the fault was injected
        # What failed was given back: no lease left taken and never renewed.
        assert worker.owned_partitions == []

        await worker.activate_async()  # the sidecar's follower retries a second later
        assert len(worker.owned_partitions) == 4
        async with AsyncDurableClient(settings) as client:
            instance_id = await client.schedule_new_orchestration("chain", input=3)
            state = await client.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.COMPLETED
    finally:
        await worker.stop_async()
