"""get_orchestration_state and get_orchestration_history: every field, failures, large values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import OrchestrationFailedError, OrchestrationNotFoundError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import rows
from durablehub.taskhub.envelope import MessageData, TaskMessage
from durablehub.taskhub.hub import TaskHub
from tests.client.simulate import checkpoint_row, clear_queue, close_to, finished, history_events, utc_now

pytestmark = pytest.mark.azurite
Status = OrchestrationStatus


@dataclass
class Progress:
    step: int


def test_unknown_instance_has_no_state(client: DurableClient) -> None:
    assert client.get_orchestration_state("nobody") is None
    with pytest.raises(ValueError, match="non-empty"):
        client.get_orchestration_state("")


def test_pending_state_maps_every_column(client: DurableClient, hub: TaskHub) -> None:
    start_at = utc_now() + timedelta(hours=1)
    iid = client.schedule_new_orchestration(
        "ProcessOrder", instance_id="p-1", input={"id": 1}, tags={"team": "a"}, version="3", start_at=start_at
    )
    row = hub.instances.get(iid)
    assert row is not None
    state = client.get_orchestration_state(iid)
    assert state is not None
    assert (state.instance_id, state.name, state.runtime_status, state.version) == (
        "p-1",
        "ProcessOrder",
        Status.PENDING,
        "3",
    )
    assert state.execution_id == row["ExecutionId"] and state.tags == {"team": "a"}
    assert close_to(state.created_at, row["CreatedTime"]) and state.last_updated_at >= state.created_at
    assert close_to(state.scheduled_start_time, start_at)
    assert state.serialized_input == '{"id":1}' and state.get_input() == {"id": 1}
    assert state.serialized_output is None and state.serialized_custom_status is None
    assert state.failure_details is None and state.completed_at is None
    assert type(state.created_at) is type(utc_now())  # a plain datetime, not the SDK's subclass
    state.raise_if_failed()


def test_completed_state_has_output_custom_status_and_completion_time(
    client: DurableClient, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="done", input=5)
    row = hub.instances.get(iid)
    assert row is not None
    result = ev.ExecutionCompleted(event_id=3, orchestration_status=Status.COMPLETED, result='{"ok":true}')
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, result, custom_status='{"step":3}'))
    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is Status.COMPLETED
    assert state.get_output() == {"ok": True} and state.get_input() == 5
    assert state.get_custom_status() == {"step": 3} and state.get_custom_status(Progress) == Progress(step=3)
    assert state.completed_at is not None and state.failure_details is None
    assert "runtime_status=COMPLETED" in repr(state)
    bare = client.get_orchestration_state(iid, fetch_payloads=False)
    assert bare is not None and bare.runtime_status is Status.COMPLETED
    assert (bare.serialized_input, bare.serialized_output, bare.serialized_custom_status) == (
        None,
        None,
        None,
    )


def test_failed_state_has_the_full_failure_details_from_history(client: DurableClient, hub: TaskHub) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="failed")
    row = hub.instances.get(iid)
    assert row is not None
    details = FailureDetails(
        message="card declined",
        error_type="builtins.ValueError",
        stack_trace='Traceback (most recent call last):\n  File "x.py", line 1\nValueError: card declined\n',
        inner_failure=FailureDetails(message="timeout", error_type="builtins.TimeoutError"),
    )
    completed = ev.ExecutionCompleted(event_id=2, orchestration_status=Status.FAILED, failure_details=details)
    hub.history.commit(
        iid, row["ExecutionId"], history_events(row, completed), first_sequence_number=0, sentinel_etag=None
    )
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, completed, custom_status='"charging"'))
    assert hub.instances.get(iid)["Output"] == "builtins.ValueError: card declined"  # type: ignore[index]
    for fetch_payloads in (True, False):
        state = client.get_orchestration_state(iid, fetch_payloads=fetch_payloads)
        assert state is not None and state.runtime_status is Status.FAILED
        assert state.failure_details == details and state.serialized_output is None
    state = client.get_orchestration_state(iid)
    assert state is not None and state.get_custom_status() == "charging"
    with pytest.raises(
        OrchestrationFailedError, match="'failed' failed: builtins.ValueError: card declined"
    ) as caught:
        state.raise_if_failed()
    assert caught.value.failure_details == details


def test_failed_row_without_history_gives_details_from_its_output(
    client: DurableClient, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="failed-no-history")
    row = hub.instances.get(iid)
    assert row is not None
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, finished(Status.FAILED)))
    state = client.get_orchestration_state(iid)
    assert state is not None and state.failure_details == FailureDetails(message="boom", error_type="E")


def test_large_output_and_custom_status_come_back_from_their_blobs(
    client: DurableClient, hub: TaskHub
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="big-out")
    row = hub.instances.get(iid)
    assert row is not None
    big = '"' + "y" * 70_000 + '"'
    done = ev.ExecutionCompleted(event_id=1, orchestration_status=Status.COMPLETED, result=big)
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, done, custom_status=big))
    assert hub.instances.get(iid, resolve_blobs=False)["Output"].startswith("http")  # type: ignore[index]
    state = client.get_orchestration_state(iid)
    assert state is not None and state.serialized_output == big and state.serialized_custom_status == big


def test_history_is_the_current_generations_events(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    with pytest.raises(OrchestrationNotFoundError, match="'ghost'"):
        client.get_orchestration_history("ghost")
    iid = client.schedule_new_orchestration("Job", instance_id="h", input=1)
    assert client.get_orchestration_history(iid) == []  # Pending: nothing ran yet
    row = hub.instances.get(iid)
    assert row is not None
    done = finished(Status.COMPLETED)
    events = history_events(row, ev.TaskScheduled(event_id=0, name="A", input="1"), done)
    hub.history.commit(iid, row["ExecutionId"], events, first_sequence_number=0, sentinel_etag=None)
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, done))
    history = client.get_orchestration_history(iid)
    assert [type(e) for e in history] == [type(e) for e in events]
    assert history[2] == events[2] and history[1].orchestration_instance.execution_id == row["ExecutionId"]  # type: ignore[attr-defined]

    clear_queue(settings, settings.names.control_queue_for(iid))
    client.schedule_new_orchestration("Job", instance_id="h", input=2)  # generation 1, Pending
    assert client.get_orchestration_history(iid) == []
    old = client.get_orchestration_history(iid, execution_id=row["ExecutionId"])
    assert len(old) == len(events)


def test_rows_written_by_the_reference_client_for_large_starts_are_read(
    client: DurableClient, hub: TaskHub
) -> None:
    # The C# client points Input at the start message's blob; the input is that message's Event.Input.
    started = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="cs", execution_id="e1"),
        name="Job",
        input='"' + "z" * 50_000 + '"',
    )
    queue = hub.control_queue_for("cs")
    sent = queue.send(
        MessageData(
            task_message=TaskMessage(event=started, orchestration_instance=started.orchestration_instance)
        )
    )
    assert sent.blob_name is not None
    row = rows.pending_instance_row(task_hub=hub.names.hub, started=started)
    hub.instances.insert({**row, "Input": hub.large_messages.url(sent.blob_name)})
    state = client.get_orchestration_state("cs")
    assert state is not None and state.serialized_input == started.input
