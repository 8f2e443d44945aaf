"""schedule_new_orchestration: the message and row it writes, delayed starts, id reuse, races."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

import durablehub as dh
from durablehub.app import App
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import (
    ConfigurationError,
    OrchestrationAlreadyExistsError,
    PartitionCountMismatchError,
    PayloadError,
    TaskHubNotFoundError,
)
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.state import OrchestrationIdReusePolicy
from durablehub.taskhub import rows, wire
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.instances_table import InstancesTable
from durablehub.taskhub.queues import EncodedMessage, TaskHubQueue
from tests.client.simulate import (
    checkpoint_row,
    clear_queue,
    close_to,
    counts,
    finished,
    message_count,
    utc_now,
    visible_bodies,
)
from tests.conftest import StorageEmulator, new_hub_name
from tests.taskhub.edm import edm_types, raw_rows

pytestmark = pytest.mark.azurite
Status = OrchestrationStatus


def only_message(settings: TaskHubSettings, instance_id: str) -> dict[str, Any]:
    [body] = visible_bodies(settings, settings.names.control_queue_for(instance_id))
    return body


def test_start_enqueues_one_reference_execution_started_message_on_the_fnv_queue(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration(
        "ProcessOrder", input={"id": 42}, instance_id="order-42", tags={"team": "a"}, version="2"
    )
    assert iid == "order-42"
    queue = settings.names.control_queue_for(iid)
    assert {q: n for q, n in counts(settings).items() if n} == {queue: 1}
    body = only_message(settings, iid)
    # MessageData as the reference's client writes it: $type first, Sender = EmptySourceInstance, no Episode.
    assert list(body) == [
        "$type",
        "ActivityId",
        "TaskMessage",
        "CompressedBlobName",
        "SequenceNumber",
        "Sender",
        "SerializableTraceContext",
    ]
    assert body["$type"] == "DurableTask.AzureStorage.MessageData" and body["CompressedBlobName"] is None
    assert body["Sender"] == {"InstanceId": "", "ExecutionId": ""}
    task_message = body["TaskMessage"]
    assert task_message["$type"] == "DurableTask.Core.TaskMessage"
    event = task_message["Event"]
    execution_id = event["OrchestrationInstance"]["ExecutionId"]
    assert len(execution_id) == 32 and int(execution_id, 16) >= 0  # Guid "N" format
    assert (
        task_message["OrchestrationInstance"]
        == event["OrchestrationInstance"]
        == {
            "$type": "DurableTask.Core.OrchestrationInstance",
            "InstanceId": "order-42",
            "ExecutionId": execution_id,
        }
    )
    assert event["$type"] == "DurableTask.Core.History.ExecutionStartedEvent"
    assert (event["EventType"], event["EventId"], event["IsPlayed"]) == (0, -1, False)
    assert (event["Name"], event["Version"], event["Input"], event["Generation"]) == (
        "ProcessOrder",
        "2",
        '{"id":42}',
        0,
    )
    assert event["Tags"] == {"$type": wire.TYPE_STRING_DICT, "team": "a"}
    assert event["ParentInstance"] is None and event["ScheduledStartTime"] is None
    assert event["Timestamp"].endswith("Z")
    assert hub.instances.get(iid)["ExecutionId"] == execution_id  # type: ignore[index]


def test_pending_row_has_exactly_the_reference_columns_and_edm_types(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration(
        "ProcessOrder", input=[1, 2], instance_id="inst^1", tags={"k": "v"}
    )
    [row] = raw_rows(settings, hub.names.instances_table, iid)
    types = edm_types(row)
    types.pop("Timestamp")  # the service's own column
    assert types == {
        "PartitionKey": "Edm.String",
        "RowKey": "Edm.String",
        "ExecutionId": "Edm.String",
        "Name": "Edm.String",
        "Version": "Edm.String",
        "Input": "Edm.String",
        "CreatedTime": "Edm.DateTime",
        "LastUpdatedTime": "Edm.DateTime",
        "RuntimeStatus": "Edm.String",
        "TaskHubName": "Edm.String",
        "Generation": "Edm.Int32",
        "Tags": "Edm.String",
        "CustomStatus": "Edm.String",
    }
    assert (row["PartitionKey"], row["RowKey"]) == ("inst^^1", "")
    assert (row["RuntimeStatus"], row["TaskHubName"], row["Generation"]) == ("Pending", hub.names.hub, 0)
    assert (row["Name"], row["Version"], row["Input"]) == ("ProcessOrder", "", "[1,2]")
    assert (row["Tags"], row["CustomStatus"]) == ('{"k":"v"}', "null")
    event = only_message(settings, iid)["TaskMessage"]["Event"]
    assert row["ExecutionId"] == event["OrchestrationInstance"]["ExecutionId"]
    # CreatedTime is the ExecutionStarted timestamp (7 fractional digits in both places).
    assert wire.parse_datetime(row["CreatedTime"]) == wire.parse_datetime(event["Timestamp"])


def test_default_id_is_a_uuid4_hex_and_a_registered_function_gives_its_name(
    client: DurableClient, hub: TaskHub
) -> None:
    app = App()

    @app.orchestrator(name="Renamed")
    def orchestrator(ctx: Any, _: Any) -> Any:
        yield None

    iid = client.schedule_new_orchestration(orchestrator)
    assert len(iid) == 32 and int(iid, 16) >= 0
    assert hub.instances.get(iid)["Name"] == "Renamed"  # type: ignore[index]


def test_start_at_sets_scheduled_start_time_and_hides_the_message_until_then(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    start_at = utc_now() + timedelta(seconds=2)
    iid = client.schedule_new_orchestration("Later", instance_id="later", start_at=start_at)
    queue = settings.names.control_queue_for(iid)
    assert visible_bodies(settings, queue) == [] and message_count(settings, queue) == 1
    row = hub.instances.get(iid)
    assert row is not None and close_to(row["ScheduledStartTime"], start_at)
    deadline = time.monotonic() + 10
    while not (bodies := visible_bodies(settings, queue)):
        assert time.monotonic() < deadline, "the start message never became visible"
        time.sleep(0.1)
    assert utc_now() >= start_at - timedelta(milliseconds=50)  # never early
    event = bodies[0]["TaskMessage"]["Event"]
    assert close_to(wire.parse_datetime(event["ScheduledStartTime"]), start_at)


def test_start_at_in_the_past_starts_at_once_and_naive_times_are_utc(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    start_at = (utc_now() - timedelta(hours=1)).replace(tzinfo=None)
    iid = client.schedule_new_orchestration("Now", instance_id="now", start_at=start_at)
    assert len(visible_bodies(settings, settings.names.control_queue_for(iid))) == 1
    state = client.get_orchestration_state(iid)
    assert state is not None and close_to(
        state.scheduled_start_time, start_at.replace(tzinfo=utc_now().tzinfo)
    )


def test_start_at_up_to_6_days_ahead_works_and_beyond_is_refused_before_writing(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    client.schedule_new_orchestration("Soon", instance_id="in-5-days", start_at=utc_now() + timedelta(days=5))
    assert message_count(settings, settings.names.control_queue_for("in-5-days")) == 1
    with pytest.raises(ValueError, match="more than 6 days ahead.*create_timer"):
        client.schedule_new_orchestration(
            "Late", instance_id="in-7-days", start_at=utc_now() + timedelta(days=7)
        )
    assert hub.instances.get("in-7-days") is None
    assert sum(counts(settings).values()) == 1


@pytest.mark.parametrize(
    "status", [Status.PENDING, Status.RUNNING, Status.SUSPENDED, Status.CONTINUED_AS_NEW]
)
def test_live_instance_is_not_replaced_and_no_message_is_left_behind(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, status: OrchestrationStatus
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="singleton")
    row = hub.instances.get(iid)
    assert row is not None
    if status is not Status.PENDING:
        hub.instances.upsert_merge({**checkpoint_row(hub.names.hub, row), "RuntimeStatus": status.table_name})
    with pytest.raises(OrchestrationAlreadyExistsError, match=f"'singleton'.*{status.table_name}") as caught:
        client.schedule_new_orchestration("Job", instance_id="singleton", input="again")
    assert (caught.value.instance_id, caught.value.status) == ("singleton", status.table_name)
    assert sum(counts(settings).values()) == 1  # only the first start's message
    assert hub.instances.get(iid)["ExecutionId"] == row["ExecutionId"]  # type: ignore[index]


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.TERMINATED])
def test_finished_instance_is_replaced_by_the_next_generation(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, status: OrchestrationStatus
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="singleton", input=1)
    clear_queue(settings, settings.names.control_queue_for(iid))  # a worker consumed it
    first = hub.instances.get(iid)
    assert first is not None
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, first, finished(status), custom_status='"x"'))
    assert client.schedule_new_orchestration("Job", instance_id="singleton", input=2) == iid
    [row] = raw_rows(settings, hub.names.instances_table, iid)
    assert (row["RuntimeStatus"], row["Generation"], row["Input"], row["CustomStatus"]) == (
        "Pending",
        1,
        "2",
        "null",
    )
    assert row["ExecutionId"] != first["ExecutionId"]
    assert "Output" not in row and "CompletedTime" not in row  # replaced, not merged
    event = only_message(settings, iid)["TaskMessage"]["Event"]
    assert (event["Generation"], event["OrchestrationInstance"]["ExecutionId"]) == (1, row["ExecutionId"])


def test_a_policy_with_no_statuses_refuses_even_a_finished_instance(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="once")
    clear_queue(settings, settings.names.control_queue_for(iid))
    row = hub.instances.get(iid)
    assert row is not None
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, finished(Status.COMPLETED)))
    never = OrchestrationIdReusePolicy(replaceable_statuses=frozenset())
    with pytest.raises(OrchestrationAlreadyExistsError, match="Completed"):
        client.schedule_new_orchestration("Job", instance_id="once", reuse_id_policy=never)
    assert sum(counts(settings).values()) == 0
    only_failed = OrchestrationIdReusePolicy(replaceable_statuses=frozenset({Status.FAILED}))
    with pytest.raises(OrchestrationAlreadyExistsError):
        client.schedule_new_orchestration("Job", instance_id="once", reuse_id_policy=only_failed)


def test_policy_lists_only_finished_statuses() -> None:
    assert OrchestrationIdReusePolicy().replaceable_statuses == {
        Status.COMPLETED,
        Status.FAILED,
        Status.TERMINATED,
        Status.CANCELED,
    }
    assert OrchestrationIdReusePolicy([Status.COMPLETED]).allows_replacing(Status.COMPLETED)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="RUNNING.*terminate"):
        OrchestrationIdReusePolicy(replaceable_statuses=frozenset({Status.COMPLETED, Status.RUNNING}))
    with pytest.raises(TypeError):
        OrchestrationIdReusePolicy(replaceable_statuses=frozenset({"Completed"}))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        OrchestrationIdReusePolicy(replaceable_statuses=Status.COMPLETED)  # type: ignore[arg-type]


def test_non_json_input_is_refused_before_anything_is_written(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    with pytest.raises(PayloadError, match=r"input of orchestration 'Job'.*set at \$\.when"):
        client.schedule_new_orchestration("Job", instance_id="bad-input", input={"when": {1, 2}})
    assert hub.instances.get("bad-input") is None
    assert sum(counts(settings).values()) == 0
    assert hub.large_messages.list_instance_blobs("bad-input") == []


@pytest.mark.parametrize(
    ("instance_id", "rule"),
    [
        ("", "non-empty"),
        ("@counter@k", "reserved for entities"),
        ("a/b", "must not contain"),
        ("a\\b", "must not contain"),
        ("a#b", "must not contain"),
        ("a?b", "must not contain"),
        ("a\nb", "must not contain"),
        (".", "'.' and '..' are path segments"),
        ("..", "'.' and '..' are path segments"),
        ("x" * 257, "limit is 256"),
        (42, "non-empty string"),
    ],
)
def test_invalid_instance_ids_are_refused_before_writing(
    client: DurableClient, settings: TaskHubSettings, instance_id: Any, rule: str
) -> None:
    with pytest.raises(ValueError, match=rule):
        client.schedule_new_orchestration("Job", instance_id=instance_id)
    assert sum(counts(settings).values()) == 0


def test_longest_allowed_id_and_argument_types(client: DurableClient) -> None:
    assert client.schedule_new_orchestration("Job", instance_id="x" * 256) == "x" * 256
    with pytest.raises(TypeError, match="tags"):
        client.schedule_new_orchestration("Job", tags={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="version"):
        client.schedule_new_orchestration("Job", version=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reuse_id_policy"):
        client.schedule_new_orchestration("Job", reuse_id_policy={Status.COMPLETED})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lambda|name"):
        client.schedule_new_orchestration(lambda ctx, x: None)


def test_losing_the_insert_race_to_another_start_withdraws_our_message(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = hub.control_queue_for("contested")
    real_send = queue.send
    rival = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="contested", execution_id="rival"),
        name="Job",
    )

    def send_then_lose(message: EncodedMessage, **kwargs: Any) -> Any:
        sent = real_send(message, **kwargs)
        hub.instances.insert(rows.pending_instance_row(task_hub=hub.names.hub, started=rival))
        return sent

    monkeypatch.setattr(queue, "send", send_then_lose)
    with pytest.raises(OrchestrationAlreadyExistsError, match="Pending"):
        client.schedule_new_orchestration("Job", instance_id="contested")
    assert sum(counts(settings).values()) == 0
    assert hub.instances.get("contested")["ExecutionId"] == "rival"  # type: ignore[index]


def test_a_worker_that_checkpoints_before_our_insert_means_the_start_succeeded(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = hub.control_queue_for("fast")
    real_send = queue.send

    def send_then_worker_runs(message: EncodedMessage, **kwargs: Any) -> Any:
        sent = real_send(message, **kwargs)
        started = message.message.event
        assert isinstance(started, ev.ExecutionStarted)
        hub.instances.upsert_merge(
            rows.checkpoint_instance_row(
                task_hub=hub.names.hub,
                instance_id="fast",
                execution_id=started.orchestration_instance.execution_id or "",
                new_events=[started],
                custom_status=None,
            )
        )
        return sent

    monkeypatch.setattr(queue, "send", send_then_worker_runs)
    assert client.schedule_new_orchestration("Job", instance_id="fast") == "fast"
    assert hub.instances.get("fast")["RuntimeStatus"] == "Running"  # type: ignore[index]  # not overwritten
    assert message_count(settings, queue.name) == 1


@pytest.mark.parametrize("size", [40_000, 200_000])
def test_large_inputs_round_trip(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, size: int
) -> None:
    payload = {"blob": "é" + "x" * size}
    iid = client.schedule_new_orchestration("Big", instance_id=f"big-{size}", input=payload)
    state = client.get_orchestration_state(iid)
    assert state is not None and state.get_input() == payload
    stored = hub.instances.get(iid, resolve_blobs=False)["Input"]  # type: ignore[index]
    body = only_message(settings, iid)
    if size == 200_000:  # the message went to a blob, and Input points at it, as the reference does
        assert body["TaskMessage"] is None and body["CompressedBlobName"].endswith(
            "-ExecutionStarted.json.gz"
        )
        assert stored == hub.large_messages.url(body["CompressedBlobName"])
    else:  # the message fits a queue message, the column does not (60 KiB of UTF-16)
        assert body["TaskMessage"]["Event"]["Input"] == json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False
        )
        assert stored.startswith("http") and stored.endswith("-Input.json.gz")


def test_the_hub_must_exist_with_the_configured_partition_count(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    missing = settings.model_copy(update={"task_hub": settings.task_hub + "x"})
    with DurableClient(missing) as client, pytest.raises(TaskHubNotFoundError, match="hub create"):
        client.get_orchestration_state("any")
    other_count = TaskHubSettings(
        task_hub=settings.task_hub, connection_string=settings.connection_string, partition_count=2
    )
    with DurableClient(other_count) as client, pytest.raises(PartitionCountMismatchError):
        client.schedule_new_orchestration("Job")
    assert sum(counts(settings).values()) == 0
    with pytest.raises(ConfigurationError, match="not the one the settings name"):
        DurableClient(missing, hub=hub)


def test_a_start_or_a_signal_creates_a_missing_hub_and_reads_never_do(azurite: StorageEmulator) -> None:
    """As DurableTask.AzureStorage's clients do: a program may start its client before its first
    worker. A status query on a missing hub still says it does not exist, and creates nothing."""
    reader = TaskHubSettings(task_hub=new_hub_name(), connection_string=azurite.connection_string)
    with DurableClient(reader) as client, pytest.raises(TaskHubNotFoundError):
        client.get_orchestration_state("any")
    with TaskHub(reader) as probe, pytest.raises(TaskHubNotFoundError):
        probe.open()  # the query created nothing

    for start in ("orchestration", "signal"):
        settings = TaskHubSettings(task_hub=new_hub_name(), connection_string=azurite.connection_string)
        with DurableClient(settings) as client:
            if start == "orchestration":
                iid = client.schedule_new_orchestration("Job", input="early")
            else:
                client.signal_entity(dh.EntityInstanceId("counter", "early"), "add", 1)
        with TaskHub(settings) as created:
            assert created.open().partition_count == settings.partition_count
            assert sum(created.describe().queue_lengths.values()) == 1, start  # the start or signal
            if start == "orchestration":
                assert created.instances.get(iid)["RuntimeStatus"] == "Pending"
            created.delete()


def test_a_client_without_a_hub_argument_makes_and_closes_its_own(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    with DurableClient(settings) as client:
        iid = client.schedule_new_orchestration("Job", input="x")
        state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is Status.PENDING


def test_a_start_with_a_generated_id_writes_without_reading_first(
    client: DurableClient, hub: TaskHub
) -> None:
    """A uuid4 the client just drew cannot name an existing instance: no status read before the
    message and the Pending row (a caller's own id is still checked against the reuse policy)."""
    client.schedule_new_orchestration("Job", instance_id="first")  # the client opens the hub
    hub.counter.reset()
    iid = client.schedule_new_orchestration("Job")
    assert hub.counter.reset() == {"queue.send": 1, "table.insert": 1}
    client.schedule_new_orchestration("Job", instance_id="given")
    assert hub.counter.reset() == {"table.query": 1, "queue.send": 1, "table.insert": 1}
    assert client.get_orchestration_state(iid) is not None


def test_a_start_with_a_generated_id_sends_its_message_and_inserts_its_row_at_once(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing can conflict with a uuid4 just drawn, so the two writes need not wait for each
    other: a start call costs one round trip, not two (a caller's own id still goes in order)."""
    client.schedule_new_orchestration("Job", instance_id="first")  # the client opens the hub
    inserting = threading.Event()
    overlapped: list[bool] = []
    real_send, real_insert = TaskHubQueue.send, InstancesTable.insert

    def send(self: TaskHubQueue, *args: Any, **kwargs: Any) -> Any:
        overlapped.append(inserting.wait(timeout=5))  # in order, the insert would start after us
        return real_send(self, *args, **kwargs)

    def insert(self: InstancesTable, row: dict[str, Any]) -> str:
        inserting.set()
        return real_insert(self, row)

    monkeypatch.setattr(TaskHubQueue, "send", send)
    monkeypatch.setattr(InstancesTable, "insert", insert)
    iid = client.schedule_new_orchestration("Job", input=1)
    assert overlapped == [True]
    assert client.get_orchestration_state(iid).runtime_status is Status.PENDING  # type: ignore[union-attr]
    queue = settings.names.control_queue_for(iid)
    assert message_count(settings, queue) == 1 + (queue == settings.names.control_queue_for("first"))


def inserts_signalled(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once the client's Pending-row insert (sent beside the start message) is done."""
    inserted = threading.Event()
    real_insert = InstancesTable.insert

    def insert(self: InstancesTable, row: dict[str, Any]) -> str:
        try:
            return real_insert(self, row)
        finally:
            inserted.set()

    monkeypatch.setattr(InstancesTable, "insert", insert)
    return inserted


def test_a_generated_id_whose_message_cannot_be_sent_leaves_no_pending_row(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row went in beside the failed send: it is withdrawn, and the send's error raised."""
    client.schedule_new_orchestration("Job", instance_id="first")
    inserted = inserts_signalled(monkeypatch)

    def send(self: TaskHubQueue, *args: Any, **kwargs: Any) -> Any:
        inserted.wait(timeout=5)
        raise ServiceRequestError("the queue is unreachable")

    monkeypatch.setattr(TaskHubQueue, "send", send)
    with pytest.raises(ServiceRequestError, match="unreachable"):
        client.schedule_new_orchestration("Job", input=1)
    assert [r["PartitionKey"] for r in hub.instances.query("RowKey eq ''")] == ["first"]


def test_a_send_that_failed_after_reaching_the_queue_is_a_start_once_a_worker_ran_it(
    client: DurableClient,
    settings: TaskHubSettings,
    hub: TaskHub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A send's answer can be lost after the message went in. If a worker has run the start
    by the time the client withdraws its Pending row (the row's ETag changed), the instance
    exists: the start returns its id, rather than an error that invites a second start."""
    inserted = inserts_signalled(monkeypatch)
    real_send = TaskHubQueue.send

    def send(self: TaskHubQueue, message: EncodedMessage, **kwargs: Any) -> Any:
        inserted.wait(timeout=5)
        real_send(self, message, **kwargs)
        started = message.message.event
        assert isinstance(started, ev.ExecutionStarted)
        hub.instances.upsert_merge(  # a worker ran the start meanwhile
            rows.checkpoint_instance_row(
                task_hub=hub.names.hub,
                instance_id=started.orchestration_instance.instance_id,
                execution_id=started.orchestration_instance.execution_id or "",
                new_events=[started],
                custom_status=None,
            )
        )
        raise ServiceResponseError("the connection was reset before the answer")

    monkeypatch.setattr(TaskHubQueue, "send", send)
    iid = client.schedule_new_orchestration("Job", input=1)
    assert client.get_orchestration_state(iid).runtime_status is OrchestrationStatus.RUNNING  # type: ignore[union-attr]
    assert sum(counts(settings).values()) == 1  # its start message, left for the worker
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
