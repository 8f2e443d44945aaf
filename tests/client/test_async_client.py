"""AsyncDurableClient: the same behaviour as DurableClient, through the asyncio adapters."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.engine import history as ev
from durablehub.errors import (
    OrchestrationAlreadyExistsError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
    PayloadError,
)
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope, rows
from durablehub.taskhub.aio.hub import AsyncTaskHub
from tests.client.simulate import (
    checkpoint_row,
    clear_queue,
    counts,
    finished,
    history_events,
    visible_bodies,
)

pytestmark = pytest.mark.azurite
Status = OrchestrationStatus


async def test_start_writes_the_message_and_pending_row(
    aclient: AsyncDurableClient, settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    iid = await aclient.schedule_new_orchestration("Job", instance_id="a-1", input={"n": 1}, tags={"t": "1"})
    [body] = visible_bodies(settings, settings.names.control_queue_for(iid))
    event = body["TaskMessage"]["Event"]
    assert (event["EventType"], event["Name"], event["Input"], event["Generation"]) == (
        0,
        "Job",
        '{"n":1}',
        0,
    )
    assert body["Sender"] == {"InstanceId": "", "ExecutionId": ""} and "Episode" not in body
    state = await aclient.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is Status.PENDING and state.get_input() == {"n": 1}
    assert state.execution_id == event["OrchestrationInstance"]["ExecutionId"] and state.tags == {"t": "1"}
    assert await aclient.get_orchestration_state("nobody") is None


async def test_duplicate_refused_finished_replaced(
    aclient: AsyncDurableClient, settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    iid = await aclient.schedule_new_orchestration("Job", instance_id="one")
    with pytest.raises(OrchestrationAlreadyExistsError, match="Pending"):
        await aclient.schedule_new_orchestration("Job", instance_id="one")
    assert sum(counts(settings).values()) == 1
    clear_queue(settings, settings.names.control_queue_for(iid))
    row = await async_hub.instances.get(iid)
    assert row is not None
    await async_hub.instances.upsert_merge(
        checkpoint_row(async_hub.names.hub, row, finished(Status.COMPLETED))
    )
    await aclient.schedule_new_orchestration("Job", instance_id="one")
    replaced = await async_hub.instances.get(iid)
    assert replaced is not None and (replaced["Generation"], replaced["RuntimeStatus"]) == (1, "Pending")
    assert sum(counts(settings).values()) == 1


async def test_lost_race_withdraws_the_message(
    aclient: AsyncDurableClient,
    settings: TaskHubSettings,
    async_hub: AsyncTaskHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = async_hub.control_queue_for("race")
    real_send = queue.send
    rival = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="race", execution_id="rival"), name="Job"
    )

    async def send_then_lose(message: envelope.MessageData, **kwargs: Any) -> Any:
        sent = await real_send(message, **kwargs)
        await async_hub.instances.insert(
            rows.pending_instance_row(task_hub=async_hub.names.hub, started=rival)
        )
        return sent

    monkeypatch.setattr(queue, "send", send_then_lose)
    with pytest.raises(OrchestrationAlreadyExistsError):
        await aclient.schedule_new_orchestration("Job", instance_id="race", input="x" * 100_000)
    assert sum(counts(settings).values()) == 0
    assert await async_hub.large_messages.list_instance_blobs("race") == []  # its blob went too


async def test_large_input_and_bad_input(
    aclient: AsyncDurableClient, settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    payload = ["ü" * 100_000, {"k": "v" * 100_000}]
    iid = await aclient.schedule_new_orchestration("Big", input=payload)
    state = await aclient.get_orchestration_state(iid)
    assert state is not None and state.get_input() == payload
    with pytest.raises(PayloadError, match="input of orchestration 'Big'"):
        await aclient.schedule_new_orchestration("Big", instance_id="bad", input=float("nan"))
    assert await async_hub.instances.get("bad") is None and sum(counts(settings).values()) == 1


async def test_waits(aclient: AsyncDurableClient, async_hub: AsyncTaskHub) -> None:
    iid = await aclient.schedule_new_orchestration("Job", instance_id="w")
    begun = time.monotonic()
    with pytest.raises(TimeoutError, match="'w' did not start within 0.5 s.*Pending"):
        await aclient.wait_for_orchestration_start(iid, timeout=0.5)
    assert time.monotonic() - begun < 1.5
    row = await async_hub.instances.get(iid)
    assert row is not None

    async def worker() -> None:
        await asyncio.sleep(0.2)
        await async_hub.instances.upsert_merge(checkpoint_row(async_hub.names.hub, row))
        await asyncio.sleep(0.2)
        await async_hub.instances.upsert_merge(
            checkpoint_row(async_hub.names.hub, row, finished(Status.COMPLETED))
        )

    task = asyncio.create_task(worker())
    started = await aclient.wait_for_orchestration_start(iid, timeout=10)
    assert started.runtime_status in (Status.RUNNING, Status.COMPLETED)
    done = await aclient.wait_for_orchestration_completion(iid, timeout=10)
    await task
    assert done.runtime_status is Status.COMPLETED and done.get_output() == "done"


async def test_events_and_history(
    aclient: AsyncDurableClient, settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    with pytest.raises(OrchestrationNotFoundError):
        await aclient.raise_orchestration_event("ghost", "E")
    with pytest.raises(OrchestrationNotFoundError):
        await aclient.get_orchestration_history("ghost")
    iid = await aclient.schedule_new_orchestration("Job", instance_id="ev")
    await aclient.raise_orchestration_event(iid, "E", data=[1])
    bodies = visible_bodies(settings, settings.names.control_queue_for(iid))
    assert [b["TaskMessage"]["Event"]["EventType"] for b in bodies] == [0, 15]
    row = await async_hub.instances.get(iid)
    assert row is not None
    details = FailureDetails(message="no", error_type="builtins.RuntimeError", stack_trace="tb")
    failed = ev.ExecutionCompleted(event_id=0, orchestration_status=Status.FAILED, failure_details=details)
    events = history_events(row, failed)
    await async_hub.history.commit(
        iid, row["ExecutionId"], events, first_sequence_number=0, sentinel_etag=None
    )
    await async_hub.instances.upsert_merge(checkpoint_row(async_hub.names.hub, row, failed))
    assert [type(e) for e in await aclient.get_orchestration_history(iid)] == [type(e) for e in events]
    state = await aclient.wait_for_orchestration_completion(iid, timeout=5)
    assert state.failure_details == details
    with pytest.raises(OrchestrationStateError, match="is Failed"):
        await aclient.raise_orchestration_event(iid, "E")


async def test_client_without_a_hub_argument(settings: TaskHubSettings, async_hub: AsyncTaskHub) -> None:
    async with AsyncDurableClient(settings) as client:
        iid = await client.schedule_new_orchestration("Job")
        assert (await client.get_orchestration_state(iid)) is not None
