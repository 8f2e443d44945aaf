"""What a message in ``{hub}-poison`` looks like, and which messages belong there (pure).

The reference has no dead-letter queue (#553): a message it cannot process is retried
forever. durablehub moves such a message to ``{hub}-poison`` inside a small record that keeps
the original body *verbatim* (as a JSON string) with what an operator needs: why, from which
queue, after how many dequeues, for which instance. ``durablehub poison requeue`` sends the
body back unchanged, so what the C# provider or durablehub reads afterwards is exactly what
was sent. A record too large for a queue message keeps its body in the large-message
container instead. A body found in the poison queue without a record (put there by another
tool) is shown and requeued as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.taskhub import envelope, wire

RECORD_TYPE = "durablehub.PoisonMessage"

# Events only ever written to history, never sent as messages: one of these on a control
# queue is foreign (or corrupt) and would corrupt the instance's history if replayed.
_HISTORY_ONLY = frozenset(
    {
        ev.EventType.ExecutionCompleted,
        ev.EventType.ExecutionFailed,
        ev.EventType.TaskScheduled,
        ev.EventType.SubOrchestrationInstanceCreated,
        ev.EventType.TimerCreated,
        ev.EventType.OrchestratorStarted,
        ev.EventType.OrchestratorCompleted,
        ev.EventType.EventSent,
        ev.EventType.ContinueAsNew,
        ev.EventType.HistoryState,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoisonRecord:
    """One message moved to the poison queue, with why and where from."""

    body: str | None  # the original body, verbatim; None while it lives in ``body_blob_name``
    reason: str
    original_queue: str | None = None
    original_message_id: str | None = None
    original_inserted_on: datetime | None = None
    dequeue_count: int = 0
    instance_id: str | None = None
    event_type: str | None = None
    poisoned_at: datetime | None = None
    body_blob_name: str | None = None
    # The instance was told (an activity's TaskFailed): requeueing would run it for nothing.
    reported: bool = False


def problem_on_control_queue(message: envelope.MessageData) -> str | None:
    """Why ``message`` (readable) cannot be processed from a control queue, or None."""
    if message.task_message is None:
        return "a large-message wrapper whose blob holds another wrapper"
    if not _instance_id_ok(message):
        return "its OrchestrationInstance has no InstanceId"
    event_type = message.event.event_type
    if event_type in _HISTORY_ONLY:
        return f"a {event_type.name} event is never sent to a control queue"
    return None


def problem_on_work_items(message: envelope.MessageData) -> str | None:
    """Why ``message`` (readable) cannot be run as an activity, or None."""
    if message.task_message is None:
        return "a large-message wrapper whose blob holds another wrapper"
    if not _instance_id_ok(message):
        return "its OrchestrationInstance has no InstanceId"
    if not isinstance(message.event, ev.TaskScheduled):
        return f"a {message.event.event_type.name} event, not a TaskScheduled, on the work-item queue"
    if not isinstance(message.event.name, str) or not message.event.name:
        return "a TaskScheduled event without an activity name"
    return None


def _instance_id_ok(message: envelope.MessageData) -> bool:
    instance_id = message.task_message.orchestration_instance.instance_id  # type: ignore[union-attr]
    return isinstance(instance_id, str) and bool(instance_id)


def describe_body(body: str) -> tuple[str | None, str | None, str | None]:
    """(instance id, event type, why unreadable) of a raw queue body, as far as it can be read."""
    try:
        message = envelope.decode(body)
    except Exception as exc:  # whatever it is, it must not stop its move to the poison queue
        return None, None, str(envelope.as_malformed(exc))
    if message.task_message is None:
        return None, None, None  # a large-message wrapper: readable once its blob is
    instance_id = message.task_message.orchestration_instance.instance_id
    return (instance_id if isinstance(instance_id, str) else None), message.event.event_type.name, None


def to_json(record: PoisonRecord) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return wire.format_datetime(value) if value is not None else None

    return {
        "$type": RECORD_TYPE,
        "Reason": record.reason,
        "OriginalQueue": record.original_queue,
        "OriginalMessageId": record.original_message_id,
        "OriginalInsertedOn": when(record.original_inserted_on),
        "DequeueCount": record.dequeue_count,
        "InstanceId": record.instance_id,
        "EventType": record.event_type,
        "PoisonedAt": when(record.poisoned_at),
        "Reported": record.reported,
        "BodyBlobName": record.body_blob_name,
        "Body": record.body,
    }


def encode(record: PoisonRecord) -> str:
    return json.dumps(to_json(record), separators=(",", ":"), ensure_ascii=False)


def fits_in_queue(text: str) -> bool:
    return not envelope.needs_offload(text)


def decode(text: str) -> PoisonRecord | None:
    """The record in a poison-queue body, or None if the body is not one (a bare message)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("$type") != RECORD_TYPE:
        return None

    def when(value: Any) -> datetime | None:
        try:
            return wire.parse_datetime(value) if isinstance(value, str) else None
        except ValueError:
            return None

    def text_or_none(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    body, blob = text_or_none(data.get("Body")), text_or_none(data.get("BodyBlobName"))
    if body is None and blob is None:
        return None  # nothing to restore: treat it as a bare message
    count = data.get("DequeueCount")
    return PoisonRecord(
        body=body,
        reason=text_or_none(data.get("Reason")) or "",
        original_queue=text_or_none(data.get("OriginalQueue")),
        original_message_id=text_or_none(data.get("OriginalMessageId")),
        original_inserted_on=when(data.get("OriginalInsertedOn")),
        dequeue_count=count if isinstance(count, int) else 0,
        instance_id=text_or_none(data.get("InstanceId")),
        event_type=text_or_none(data.get("EventType")),
        poisoned_at=when(data.get("PoisonedAt")),
        body_blob_name=blob,
        reported=data.get("Reported") is True,
    )


def bare(body: str) -> PoisonRecord:
    """A body found in the poison queue without a record: described as far as it can be."""
    instance_id, event_type, _unreadable = describe_body(body)
    return PoisonRecord(body=body, reason="", instance_id=instance_id, event_type=event_type)
