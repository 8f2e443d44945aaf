"""Clients on a half-made hub (issue 22 §1): ``taskhub.json`` without the queues and tables,
as a client meets it while a worker (or older code, or the C# provider) is still making the
hub, or a hub whose queue or table was deleted under a running client.

A start, a raise and a signal make what they need and succeed; reads answer as on an empty
hub; no azure-core storage error reaches the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.errors import OrchestrationNotFoundError
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.leases import TaskHubInfo
from durablehub.taskhub.hub import TaskHub
from tests.client.simulate import message_count

pytestmark = pytest.mark.azurite


def only_taskhub_json(settings: TaskHubSettings) -> None:
    """What a client sees between a worker's first write and its last, when ``create`` wrote
    ``taskhub.json`` first (durablehub before issue 22)."""
    with TaskHub(settings) as hub:
        info = TaskHubInfo(task_hub_name=settings.task_hub, created_at=datetime.now(UTC), partition_count=4)
        assert hub.leases.create_task_hub_info(info) is None


def messages(settings: TaskHubSettings) -> int:
    """The messages in the hub's queues; a queue nobody has made yet holds none."""
    with TaskHub(settings) as hub:
        made = [q.name for q in [*hub.control_queues, hub.work_items] if q.exists()]
    return sum(message_count(settings, name) for name in made)


def delete_hub(settings: TaskHubSettings) -> None:
    with TaskHub(settings) as hub:
        hub.delete()


@pytest.fixture
def half_made(settings: TaskHubSettings) -> Any:
    only_taskhub_json(settings)
    yield settings
    delete_hub(settings)


def test_start_raise_signal_on_a_hub_with_only_taskhub_json(half_made: TaskHubSettings) -> None:
    with DurableClient(half_made) as client:
        iid = client.schedule_new_orchestration("approval", input=5, instance_id="half-1")
        client.raise_orchestration_event(iid, "Approval", data=True)
        client.signal_entity(EntityInstanceId("counter", "k"), "add", 1)
        state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is OrchestrationStatus.PENDING
    assert messages(half_made) == 3  # the start, the event and the signal


async def test_async_start_raise_signal_on_a_hub_with_only_taskhub_json(half_made: TaskHubSettings) -> None:
    async with AsyncDurableClient(half_made) as client:
        iid = await client.schedule_new_orchestration("approval", input=5, instance_id="half-2")
        await client.raise_orchestration_event(iid, "Approval", data=True)
        await client.signal_entity(EntityInstanceId("counter", "k"), "add", 1)
        state = await client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is OrchestrationStatus.PENDING
    assert messages(half_made) == 3


def test_reads_on_a_hub_with_only_taskhub_json_answer_as_on_an_empty_hub(half_made: TaskHubSettings) -> None:
    with DurableClient(half_made) as client:
        assert client.get_orchestration_state("nobody") is None
        assert client.query_orchestrations().items == []
        assert client.get_all_orchestration_states() == []
        assert client.get_all_entities() == []
        assert client.get_entity(EntityInstanceId("counter", "k")) is None
        with pytest.raises(OrchestrationNotFoundError):
            client.get_orchestration_history("nobody")
        with pytest.raises(OrchestrationNotFoundError):
            client.terminate_orchestration("nobody")
        assert client.purge_orchestration("nobody").deleted_instance_count == 0
        assert client.purge_orchestrations_by().deleted_instance_count == 0
        cleaned = client.clean_entity_storage()
        assert (cleaned.empty_entities_removed, cleaned.orphaned_locks_released) == (0, 0)
        with pytest.raises(TimeoutError):
            client.wait_for_orchestration_start("nobody", timeout=0.2)


async def test_async_reads_on_a_hub_with_only_taskhub_json_answer_as_on_an_empty_hub(
    half_made: TaskHubSettings,
) -> None:
    async with AsyncDurableClient(half_made) as client:
        assert await client.get_orchestration_state("nobody") is None
        assert (await client.query_orchestrations()).items == []
        assert await client.get_all_entities() == []
        assert (await client.purge_orchestrations_by()).deleted_instance_count == 0
        assert (await client.clean_entity_storage()).empty_entities_removed == 0


async def test_a_queue_and_tables_deleted_under_a_running_client_are_made_again(
    settings: TaskHubSettings, async_hub: AsyncTaskHub
) -> None:
    async with AsyncDurableClient(settings) as client:
        first = await client.schedule_new_orchestration("approval", input=5)  # the hub is checked
        queue = async_hub.control_queue_for("again")
        await queue.delete()
        await async_hub.instances.delete_table()
        await async_hub.history.delete_table()
        assert await client.get_orchestration_state(first) is None
        assert (await client.query_orchestrations()).items == []
        iid = await client.schedule_new_orchestration("approval", input=5, instance_id="again")
        await client.raise_orchestration_event(iid, "Approval", data=True)
        assert await client.get_orchestration_history(iid) == []  # no History table: no events yet
        assert await queue.approximate_count() == 2
        state = await client.get_orchestration_state(iid)
        assert state is not None and state.runtime_status is OrchestrationStatus.PENDING


def test_no_storage_error_escapes_a_half_made_hub(half_made: TaskHubSettings) -> None:
    """Everything a user can call on a client, once, on a hub with only ``taskhub.json``:
    durablehub's own errors are fine (not found, timeout), azure-core's are not."""
    calls = {
        "start": lambda c: c.schedule_new_orchestration("approval", instance_id="x"),
        "raise": lambda c: c.raise_orchestration_event("x", "Approval"),
        "signal": lambda c: c.signal_entity("@counter@k", "add", 1),
        "suspend": lambda c: c.suspend_orchestration("x"),
        "resume": lambda c: c.resume_orchestration("x"),
        "terminate": lambda c: c.terminate_orchestration("x"),
        "history": lambda c: c.get_orchestration_history("x"),
        "query": lambda c: c.query_orchestrations(),
        "entities": lambda c: c.query_entities(),
        "purge": lambda c: c.purge_orchestration("x"),
    }
    escaped: dict[str, str] = {}
    for name, call in calls.items():
        with DurableClient(half_made) as client:
            try:
                call(client)
            except AzureError as exc:
                escaped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            except Exception:  # durablehub's own errors are answers
                pass
    assert escaped == {}
