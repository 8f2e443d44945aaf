"""wait_for_orchestration_start/completion and raise_orchestration_event."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import OrchestrationNotFoundError, OrchestrationStateError, PayloadError
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.client.simulate import checkpoint_row, counts, finished, visible_bodies

pytestmark = pytest.mark.azurite
Status = OrchestrationStatus


def later(
    settings: TaskHubSettings, instance_id: str, *events: ev.HistoryEvent, status: str | None = None
) -> threading.Thread:
    """A stand-in worker: 0.3 s from now, merge a checkpoint (its own storage clients, its own thread)."""

    def run() -> None:
        time.sleep(0.3)
        with TaskHub(settings) as worker_hub:
            row = worker_hub.instances.get(instance_id)
            assert row is not None
            merged = checkpoint_row(worker_hub.names.hub, row, *events, custom_status='"busy"')
            worker_hub.instances.upsert_merge({**merged, **({"RuntimeStatus": status} if status else {})})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_waits_time_out_quickly_naming_the_instance_and_its_last_status(client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="stuck")
    begun = time.monotonic()
    with pytest.raises(TimeoutError, match=r"'stuck' did not start within 0.5 s \(last status: Pending\)"):
        client.wait_for_orchestration_start(iid, timeout=0.5)
    assert time.monotonic() - begun < 1.5
    with pytest.raises(
        TimeoutError, match=r"'nobody' did not complete within 0.2 s \(last status: not found\)"
    ):
        client.wait_for_orchestration_completion("nobody", timeout=timedelta(milliseconds=200))
    with pytest.raises(ValueError, match="timeout"):
        client.wait_for_orchestration_start(iid, timeout=-1)


def test_wait_for_start_returns_once_the_instance_runs(
    client: DurableClient, settings: TaskHubSettings
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="w1", input="in")
    thread = later(settings, iid)
    state = client.wait_for_orchestration_start(iid, timeout=10)
    thread.join()
    assert state.runtime_status is Status.RUNNING and state.serialized_input is None  # fetch_payloads=False
    assert client.wait_for_orchestration_start(iid, fetch_payloads=True, timeout=None).get_input() == "in"


def test_wait_for_completion_returns_the_final_state(
    client: DurableClient, settings: TaskHubSettings
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="w2")
    thread = later(settings, iid, finished(Status.COMPLETED))
    state = client.wait_for_orchestration_completion(iid, timeout=10)
    thread.join()
    assert state.runtime_status is Status.COMPLETED and state.get_output() == "done"


def test_failed_is_complete_but_continued_as_new_is_not(client: DurableClient, hub: TaskHub) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="eternal")
    row = hub.instances.get(iid)
    assert row is not None
    again = ev.ContinueAsNew(event_id=1, result="null")
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, again))
    with pytest.raises(TimeoutError, match="ContinuedAsNew"):
        client.wait_for_orchestration_completion(iid, timeout=0.5)
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, finished(Status.FAILED)))
    state = client.wait_for_orchestration_completion(iid, timeout=5)
    assert state.runtime_status is Status.FAILED and state.failure_details is not None


def event_bodies(settings: TaskHubSettings, instance_id: str) -> list[dict[str, Any]]:
    bodies = visible_bodies(settings, settings.names.control_queue_for(instance_id))
    return [b for b in bodies if b["TaskMessage"]["Event"]["EventType"] == 15]


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUSPENDED])
def test_event_to_a_live_instance_joins_whichever_generation_is_current(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, status: OrchestrationStatus
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="approval")
    if status is not Status.PENDING:
        row = hub.instances.get(iid)
        assert row is not None
        hub.instances.upsert_merge({**checkpoint_row(hub.names.hub, row), "RuntimeStatus": status.table_name})
    client.raise_orchestration_event(iid, "Approval", data={"by": "ana"})
    [body] = event_bodies(settings, iid)
    assert "Episode" not in body and body["Sender"] == {"InstanceId": "", "ExecutionId": ""}
    assert body["TaskMessage"]["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance",
        "InstanceId": "approval",
        "ExecutionId": None,
    }
    event = body["TaskMessage"]["Event"]
    assert event["$type"] == "DurableTask.Core.History.EventRaisedEvent"
    assert (event["EventId"], event["Name"], event["Input"]) == (-1, "Approval", '{"by":"ana"}')


def test_event_to_an_unknown_instance_is_not_found(client: DurableClient, settings: TaskHubSettings) -> None:
    with pytest.raises(OrchestrationNotFoundError, match="'ghost'") as caught:
        client.raise_orchestration_event("ghost", "Approval")
    assert caught.value.instance_id == "ghost"
    assert sum(counts(settings).values()) == 0


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.TERMINATED])
def test_event_to_a_finished_instance_is_refused_and_not_sent(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub, status: OrchestrationStatus
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="over")
    row = hub.instances.get(iid)
    assert row is not None
    hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, finished(status)))
    with pytest.raises(OrchestrationStateError, match=f"'over' is {status.table_name}; events .* discarded"):
        client.raise_orchestration_event(iid, "Approval", data=1)
    assert event_bodies(settings, iid) == []


def test_event_arguments_are_checked_before_anything_is_sent(
    client: DurableClient, settings: TaskHubSettings
) -> None:
    iid = client.schedule_new_orchestration("Job", instance_id="args")
    with pytest.raises(PayloadError, match="data of event 'Approval'"):
        client.raise_orchestration_event(iid, "Approval", data=object())
    with pytest.raises(ValueError, match="event_name"):
        client.raise_orchestration_event(iid, "")
    assert event_bodies(settings, iid) == []


def test_a_wait_that_finds_its_goal_reads_the_row_once(
    client: DurableClient, settings: TaskHubSettings, hub: TaskHub
) -> None:
    """The poll that sees the goal has already read the row: the state comes from it, not from
    a second read (one request fewer per wait; the history only for a failed instance)."""
    iid = client.schedule_new_orchestration("Job", instance_id="once", input="in")
    later(settings, iid, finished(Status.COMPLETED)).join()
    hub.counter.reset()
    state = client.wait_for_orchestration_completion(iid, timeout=10)
    assert state.get_output() == "done" and state.get_input() == "in" and state.get_custom_status() == "busy"
    assert hub.counter.reset() == {"table.query": 1}
    started = client.wait_for_orchestration_start(iid, timeout=10)
    assert started.serialized_input is None and hub.counter.reset() == {"table.query": 1}


def test_without_the_status_check_an_event_is_one_send_as_in_durabletask_core(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    """``throw_status_exceptions_on_raise_event=False`` (Durable Functions' provider switch) skips the
    status read: one request per event, and an event to a finished instance is sent and then
    discarded by the worker, as DurableTask.Core's TaskHubClient does."""
    unchecked = settings.model_copy(update={"throw_status_exceptions_on_raise_event": False})
    with DurableClient(unchecked, hub=hub) as fast:
        iid = fast.schedule_new_orchestration("Job", instance_id="unchecked")
        row = hub.instances.get(iid)
        assert row is not None
        hub.instances.upsert_merge(checkpoint_row(hub.names.hub, row, finished(Status.COMPLETED)))
        hub.counter.reset()
        fast.raise_orchestration_event(iid, "Approval", data=1)
        fast.raise_orchestration_event("ghost", "Approval", data=2)
    assert hub.counter.reset() == {"queue.send": 2}
    [body] = event_bodies(settings, iid)
    assert body["TaskMessage"]["Event"]["Input"] == "1"
    assert len(event_bodies(settings, "ghost")) == 1


def test_the_status_check_is_on_by_default_and_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: TaskHubSettings
) -> None:
    assert settings.throw_status_exceptions_on_raise_event is True
    monkeypatch.setenv("DURABLEHUB_THROW_STATUS_EXCEPTIONS_ON_RAISE_EVENT", "false")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    assert TaskHubSettings().throw_status_exceptions_on_raise_event is False
