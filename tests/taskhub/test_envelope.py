"""The MessageData queue envelope: reference shape, round trips, and what is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from durablehub.engine import history as ev
from durablehub.errors import MalformedMessageError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.taskhub import envelope

T0 = datetime(2026, 4, 5, 3, 31, 23, 626892, tzinfo=UTC)
TARGET = ev.OrchestrationInstance(instance_id="order-42", execution_id="exec1")


def activity_message() -> envelope.MessageData:
    return envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.TaskScheduled(event_id=2, name="ChargeCreditCard", input='{"amount":10}', timestamp=T0),
            orchestration_instance=TARGET,
        ),
        activity_id=uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e"),
        sequence_number=6,
        episode=3,
        sender=TARGET,
    )


def test_activity_message_has_the_reference_shape() -> None:
    data = json.loads(envelope.encode(activity_message()))
    assert list(data) == [
        "$type",
        "ActivityId",
        "TaskMessage",
        "CompressedBlobName",
        "SequenceNumber",
        "Episode",
        "Sender",
        "SerializableTraceContext",
    ]
    assert data["$type"] == "DurableTask.AzureStorage.MessageData"
    assert data["ActivityId"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert data["Sender"] == {"InstanceId": "order-42", "ExecutionId": "exec1"}  # no $type on Sender
    tm = data["TaskMessage"]
    assert list(tm)[0] == "$type" and tm["$type"] == "DurableTask.Core.TaskMessage"
    assert tm["OrchestrationInstance"] == {
        "$type": "DurableTask.Core.OrchestrationInstance",
        "InstanceId": "order-42",
        "ExecutionId": "exec1",
    }
    event = tm["Event"]
    assert list(event)[:2] == ["$type", "EventType"]
    assert event["$type"] == "DurableTask.Core.History.TaskScheduledEvent" and event["EventType"] == 4
    assert event["Name"] == "ChargeCreditCard" and event["Input"] == '{"amount":10}' and event["EventId"] == 2
    assert event["Timestamp"] == "2026-04-05T03:31:23.6268920Z"
    assert tm["OrchestrationExecutionContext"]["OrchestrationTags"]["$type"].startswith(
        "System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib]"
    )


def test_client_message_omits_episode_and_sender() -> None:
    msg = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.EventRaised(name="Approval", input="true", timestamp=T0), orchestration_instance=TARGET
        )
    )
    data = json.loads(envelope.encode(msg))
    assert "Episode" not in data and "Sender" not in data


@pytest.mark.parametrize(
    "event",
    [
        ev.ExecutionStarted(
            orchestration_instance=TARGET,
            name="P",
            input="1",
            timestamp=T0,
            tags={"a": "b"},
            parent_instance=ev.ParentInstance(
                name="Parent",
                task_schedule_id=3,
                orchestration_instance=ev.OrchestrationInstance(instance_id="p", execution_id="x"),
            ),
            scheduled_start_time=T0,
            generation=2,
        ),
        ev.TaskCompleted(task_scheduled_id=2, result='"ok"', timestamp=T0),
        ev.TaskFailed(
            task_scheduled_id=2,
            reason="r",
            details="d",
            timestamp=T0,
            failure_details=FailureDetails(
                message="m",
                error_type="builtins.KeyError",
                stack_trace="tb",
                inner_failure=FailureDetails(message="i", error_type="x.Y"),
            ),
        ),
        ev.TimerFired(timer_id=5, fire_at=T0, timestamp=T0),
        ev.ExecutionTerminated(input='"stop"', timestamp=T0),
        ev.SubOrchestrationInstanceCompleted(task_scheduled_id=1, result="null", timestamp=T0),
        ev.ExecutionCompleted(orchestration_status=OrchestrationStatus.TERMINATED, result="1", timestamp=T0),
        ev.ExecutionSuspended(reason="pause", timestamp=T0),
        ev.GenericEvent(data="x", timestamp=T0),
    ],
    ids=lambda e: e.event_type.name,
)
def test_every_event_round_trips(event: ev.HistoryEvent) -> None:
    msg = envelope.MessageData(task_message=envelope.TaskMessage(event=event, orchestration_instance=TARGET))
    assert envelope.decode(envelope.encode(msg)) == msg


def test_status_enum_is_written_as_the_core_integer() -> None:
    msg = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.ExecutionCompleted(orchestration_status=OrchestrationStatus.FAILED, timestamp=T0),
            orchestration_instance=TARGET,
        )
    )
    assert json.loads(envelope.encode(msg))["TaskMessage"]["Event"]["OrchestrationStatus"] == 3


def test_base64_bodies_and_assembly_suffixes_are_accepted() -> None:
    data = envelope.to_json(activity_message())
    data["$type"] = "DurableTask.AzureStorage.MessageData, DurableTask.AzureStorage"
    data["TaskMessage"]["Event"]["$type"] += ", DurableTask.Core"
    body = base64.b64encode(json.dumps(data).encode()).decode()
    assert envelope.decode(body) == activity_message()


def test_large_message_wrapper() -> None:
    wrapper = envelope.wrapper_for("order-42/message-abc-TaskScheduled.json.gz")
    data = json.loads(envelope.encode(wrapper))
    assert data["ActivityId"] == "00000000-0000-0000-0000-000000000000" and data["TaskMessage"] is None
    assert envelope.decode(envelope.encode(wrapper)).compressed_blob_name == wrapper.compressed_blob_name
    assert envelope.large_message_blob_name(activity_message()) == (
        "order-42/message-0f8fad5bd9cb469fa16570867728950e-TaskScheduled.json.gz"
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json at all", "neither JSON nor Base64"),
        ("{not json", "not valid JSON"),
        ("[1,2]", "not a JSON object"),
        ('{"$type":"Some.Other.Type"}', "not a DurableTask.AzureStorage.MessageData"),
        ('{"$type":"DurableTask.AzureStorage.MessageData","TaskMessage":null}', "neither a TaskMessage"),
        (
            '{"TaskMessage":{"Event":{"$type":"X.Unknown"},"OrchestrationInstance":{"InstanceId":"i"}}}',
            "unknown event",
        ),
        (
            '{"TaskMessage":{"Event":{"EventType":4},"OrchestrationInstance":{"InstanceId":"i"}}}',
            "incomplete",
        ),
        ('{"TaskMessage":{"Event":{"EventType":4,"Name":"A"}}}', "no OrchestrationInstance"),
        ('{"ActivityId":"nope","TaskMessage":null,"CompressedBlobName":"b"}', "not a GUID"),
    ],
)
def test_malformed_messages_name_the_problem(body: str, problem: str) -> None:
    with pytest.raises(MalformedMessageError, match=problem):
        envelope.decode(body)
