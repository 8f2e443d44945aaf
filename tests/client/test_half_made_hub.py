"""Clients on a half-made hub (issue 22 §1): ``taskhub.json`` without the queues and tables,
as a client meets it while a worker (or older code, or the C# provider) is still making the
hub, or a hub whose queue or table was deleted under a running client.

A start, a raise and a signal make what they need and succeed; reads answer as on an empty
hub; no azure-core storage error reaches the caller."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
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


def test_create_writes_taskhub_json_last(settings: TaskHubSettings) -> None:
    """While any queue, table or container is still being made, ``taskhub.json`` is absent, so
    a client that finds it finds a whole hub."""
    seen: list[tuple[str, bool]] = []
    with TaskHub(settings) as hub:

        def spy(name: str, make: Any) -> Any:
            def made() -> None:
                make()
                seen.append((name, hub.leases.read_task_hub_info() is not None))

            return made

        hub.history.create = spy("History", hub.history.create)  # type: ignore[method-assign]
        hub.instances.create = spy("Instances", hub.instances.create)  # type: ignore[method-assign]
        hub.work_items.create = spy("workitems", hub.work_items.create)  # type: ignore[method-assign]
        last = hub.control_queues[-1]
        last.create = spy(last.name, last.create)  # type: ignore[method-assign]
        hub.large_messages.create = spy("largemessages", hub.large_messages.create)  # type: ignore[method-assign]
        try:
            hub.create()
            assert len(seen) == 5 and [name for name, present in seen if present] == []
            assert hub.leases.read_task_hub_info() is not None
        finally:
            hub.delete()


def test_reads_on_a_hub_being_made_answer_as_on_an_empty_hub(settings: TaskHubSettings) -> None:
    """The lease container exists, ``taskhub.json`` not yet: a worker is making the hub."""
    with TaskHub(settings) as hub:
        hub.leases.create(settings.names.control_queues)
        try:
            with DurableClient(settings) as client:
                assert client.get_orchestration_state("nobody") is None
                assert client.query_orchestrations().items == []
                with pytest.raises(OrchestrationNotFoundError):
                    client.raise_orchestration_event("nobody", "Approval")
                iid = client.schedule_new_orchestration("approval", input=5)  # makes the rest
            assert hub.leases.read_task_hub_info() is not None and iid
        finally:
            hub.delete()


def test_a_worker_finishes_a_half_made_hub_and_runs_what_was_sent(half_made: TaskHubSettings) -> None:
    """A client's start, event and signal sent before any worker ran; the worker that comes
    next makes the rest of the hub and runs them."""
    from durablehub.worker import Worker
    from tests.e2e.apps import app as e2e_app

    with DurableClient(half_made) as client:
        iid = client.schedule_new_orchestration("approval", input=60)
        client.raise_orchestration_event(iid, "Approval", data="yes")
        client.signal_entity(EntityInstanceId("account", "half"), "deposit", 7)
        with Worker(e2e_app, half_made):
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status is OrchestrationStatus.COMPLETED, state
            assert state.get_output() == {"approved": "yes"}
            for _ in range(300):
                entity = client.get_entity(EntityInstanceId("account", "half"))
                if entity is not None:
                    break
                time.sleep(0.1)
        assert entity is not None and entity.get_state() == 7


async def test_two_creators_with_one_partition_count_at_once_both_find_the_hub_whole(
    settings: TaskHubSettings,
) -> None:
    """Two workers starting together: both return a whole hub with one ``taskhub.json``
    (this held before issue 22 too; the test keeps it so with ``taskhub.json`` written last)."""
    async with AsyncTaskHub(settings) as a, AsyncTaskHub(settings) as b:
        try:
            first, second = await asyncio.gather(a.create(), b.create())
            assert first == second
            for queue in [*a.control_queues, a.work_items]:
                assert await queue.exists(), queue.name
            leases = await a.leases.list()
            assert [lease.lease.partition_id for lease in leases] == a.names.control_queues
            tables = [t.name async for t in a.clients.table.list_tables()]
            assert {a.names.history_table, a.names.instances_table} <= set(tables)
            containers = [c.name async for c in a.clients.blob.list_containers()]
            assert a.names.large_messages_container in containers
        finally:
            await a.delete()


async def test_the_http_api_on_a_half_made_hub(half_made: TaskHubSettings) -> None:
    from durablehub.http import HttpSettings, create_app

    async with AsyncDurableClient(half_made) as client:
        app = create_app(
            http_settings=HttpSettings(key="k" * 24, allowed_hosts=["testserver"]), client=client
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"x-functions-key": "k" * 24}
        ) as http:
            api = "/runtime/webhooks/durabletask"
            assert (await http.get(f"{api}/instances/nobody")).status_code == 404
            listed = await http.get(f"{api}/instances")
            assert listed.status_code == 200 and listed.json() == []
            started = await http.post(f"{api}/orchestrators/approval", json=5)
            assert started.status_code == 202, started.text
            iid = started.json()["id"]
            raised = await http.post(f"{api}/instances/{iid}/raiseEvent/Approval", json=True)
            assert raised.status_code == 202, raised.text


def test_the_cli_on_a_half_made_hub(half_made: TaskHubSettings) -> None:
    from typer.testing import CliRunner

    from durablehub.cli.main import app

    env = {
        "AzureWebJobsStorage": half_made.connection_string.get_secret_value(),  # type: ignore[union-attr]
        "DURABLEHUB_TASK_HUB": half_made.task_hub,
    }
    runner = CliRunner()
    info = runner.invoke(app, ["hub", "info", "--json"], env=env)
    assert info.exit_code == 0, info.output
    assert "workitems" in " ".join(json.loads(info.output)["missing"])
    started = runner.invoke(app, ["start", "approval", "--input", "5", "--id", "cli-1"], env=env)
    assert started.exit_code == 0 and started.output.strip() == "cli-1", started.output
    listed = runner.invoke(app, ["list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output


def test_a_queue_that_cannot_be_made_again_says_so(half_made: TaskHubSettings) -> None:
    """Azure Storage refuses to make a queue again for about 30 s after it was deleted (Azurite
    does not): here its create is made to do nothing, and the start says what is wrong."""
    from durablehub.errors import TaskHubNotFoundError

    with TaskHub(half_made) as hub, DurableClient(half_made, hub=hub) as client:
        queue = hub.control_queue_for("refused")
        queue.create = lambda: None  # type: ignore[method-assign]
        with pytest.raises(TaskHubNotFoundError, match=f"queue '{queue.name}'.*about 30 s"):
            client.schedule_new_orchestration("approval", instance_id="refused")
