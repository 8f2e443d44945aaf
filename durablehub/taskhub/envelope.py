"""The ``MessageData`` queue envelope ↔ engine messages (taskhub-layout.md §4).

Newtonsoft with ``TypeNameHandling.Objects`` wrote the reference's bodies, so ``$type`` is the
first property of every object, enums are integers, dates are ISO-8601 UTC and ``Sender`` has
no ``$type``. Bodies are raw UTF-8 JSON; Base64 (v1 workers) and ``, Assembly`` suffixes on
type names are accepted on read. Anything else is a ``MalformedMessageError`` that names
what is wrong, so the runtime can quarantine the message instead of retrying it forever.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from durablehub.engine import history as ev
from durablehub.errors import MalformedMessageError, PayloadTooLargeError
from durablehub.models import OrchestrationStatus
from durablehub.taskhub import wire
from durablehub.taskhub.names import blob_segments

TYPE_MESSAGE_DATA = "DurableTask.AzureStorage.MessageData"
TYPE_TASK_MESSAGE = f"{wire.CORE}.TaskMessage"
TYPE_EXECUTION_CONTEXT = f"{wire.CORE}.OrchestrationExecutionContext"
MAX_QUEUE_PAYLOAD_BYTES = 45 * 1024  # above this the message goes to a blob (64 KB limit after Base64)
ZERO_GUID = uuid.UUID(int=0)


def event_type_name(event_type: ev.EventType) -> str:
    """C# class name of an event: ``DurableTask.Core.History.TaskScheduledEvent``."""
    suffix = "" if event_type is ev.EventType.GenericEvent else "Event"
    return f"{wire.CORE}.History.{event_type.name}{suffix}"


_CLASS_BY_TYPE_NAME = {event_type_name(t): cls for t, cls in ev.EVENT_CLASSES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskMessage:
    """An event addressed to one orchestration instance (``DurableTask.Core.TaskMessage``)."""

    event: ev.HistoryEvent
    orchestration_instance: ev.OrchestrationInstance
    sequence_number: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageData:
    """One queue message body. ``task_message`` is None only in a large-message wrapper."""

    task_message: TaskMessage | None
    activity_id: uuid.UUID = field(default_factory=uuid.uuid4)
    compressed_blob_name: str | None = None
    sequence_number: int = 0
    episode: int | None = None
    sender: ev.OrchestrationInstance | None = None
    serializable_trace_context: str | None = None

    @property
    def instance_id(self) -> str:
        if self.task_message is None:
            raise MalformedMessageError("large-message wrapper has no instance until its blob is read")
        return self.task_message.orchestration_instance.instance_id

    @property
    def event(self) -> ev.HistoryEvent:
        if self.task_message is None:
            raise MalformedMessageError("large-message wrapper has no event until its blob is read")
        return self.task_message.event


def large_message_blob_name(message: MessageData) -> str:
    """``{rawInstanceId}/message-{ActivityId:N}-{EventType}.json.gz`` (the reference's format;
    ``.`` and ``..`` segments of the id are escaped, see ``blob_segments``)."""
    prefix = blob_segments(message.instance_id)
    return f"{prefix}/message-{message.activity_id.hex}-{message.event.event_type.name}.json.gz"


def wrapper_for(blob_name: str) -> MessageData:
    """The small message the queue carries when the real one lives in a blob."""
    return MessageData(task_message=None, activity_id=ZERO_GUID, compressed_blob_name=blob_name)


# ------------------------------------------------------------------------------- encoding


def _event_to_json(event: ev.HistoryEvent) -> dict[str, Any]:
    body: dict[str, Any] = {"$type": event_type_name(event.event_type), "EventType": int(event.event_type)}
    for f in dataclasses.fields(event):
        if f.name in wire.BASE_FIELDS:
            continue
        value = getattr(event, f.name)
        if f.name in wire.OBJECT_FIELDS:
            value = wire.object_to_json(f.name, value, typed=True)
        elif f.name in wire.STATUS_FIELDS:
            value = value.wire_value
        elif f.name in wire.DATETIME_FIELDS and value is not None:
            value = wire.format_datetime(value)
        body[wire.pascal(f.name)] = value
    body["EventId"] = event.event_id
    body["IsPlayed"] = event.is_played
    body["Timestamp"] = wire.format_datetime(event.timestamp)
    return body


def to_json(message: MessageData) -> dict[str, Any]:
    task_message: dict[str, Any] | None = None
    if message.task_message is not None:
        tm = message.task_message
        task_message = {
            "$type": TYPE_TASK_MESSAGE,
            "Event": _event_to_json(tm.event),
            "SequenceNumber": tm.sequence_number,
            "OrchestrationInstance": wire.instance_to_json(tm.orchestration_instance, typed=True),
            "OrchestrationExecutionContext": None,
        }
        if isinstance(tm.event, ev.TaskScheduled):
            task_message["OrchestrationExecutionContext"] = {
                "$type": TYPE_EXECUTION_CONTEXT,
                "OrchestrationTags": {"$type": wire.TYPE_STRING_DICT, **(tm.event.tags or {})},
            }
    body: dict[str, Any] = {
        "$type": TYPE_MESSAGE_DATA,
        "ActivityId": str(message.activity_id),
        "TaskMessage": task_message,
        "CompressedBlobName": message.compressed_blob_name,
        "SequenceNumber": message.sequence_number,
    }
    if message.episode is not None:
        body["Episode"] = message.episode
    if message.sender is not None:
        body["Sender"] = wire.instance_to_json(message.sender, typed=False)
    body["SerializableTraceContext"] = message.serializable_trace_context
    return body


def encode(message: MessageData) -> str:
    """The queue body: compact JSON text (sent raw, UTF-8)."""
    return json.dumps(to_json(message), separators=(",", ":"), ensure_ascii=False)


def approximate_size(message: MessageData) -> int:
    """About how long ``encode(message)`` is: its payloads' length (to decide where to encode it)."""
    if message.task_message is None:
        return 0
    event = message.task_message.event
    return sum(len(v) for f in dataclasses.fields(event) if isinstance(v := getattr(event, f.name), str))


def needs_offload(body: str) -> bool:
    return len(body.encode("utf-8")) > MAX_QUEUE_PAYLOAD_BYTES


# ------------------------------------------------------------------------------- decoding


def _strip_assembly(type_name: Any) -> str:
    # v1 wrote "DurableTask.AzureStorage.MessageData, DurableTask.AzureStorage"; generic
    # arguments contain commas inside brackets, so only cut at a comma outside them.
    text = str(type_name or "")
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            return text[:i].strip()
    return text.strip()


def _event_from_json(data: Any) -> ev.HistoryEvent:
    if not isinstance(data, dict):
        raise MalformedMessageError("TaskMessage.Event is missing or not an object")
    cls = _CLASS_BY_TYPE_NAME.get(_strip_assembly(data.get("$type")))
    if cls is None and "EventType" in data:
        try:
            cls = ev.EVENT_CLASSES[ev.EventType(int(data["EventType"]))]
        except (ValueError, KeyError) as exc:
            raise MalformedMessageError(f"unknown EventType {data['EventType']!r}") from exc
    if cls is None:
        raise MalformedMessageError(f"unknown event type {data.get('$type')!r}")
    kwargs: dict[str, Any] = {
        "event_id": int(data.get("EventId", -1)),
        "is_played": bool(data.get("IsPlayed", False)),
    }
    if data.get("Timestamp"):
        kwargs["timestamp"] = wire.parse_datetime(data["Timestamp"])
    for f in dataclasses.fields(cls):
        if f.name in wire.BASE_FIELDS:
            continue
        key = wire.pascal(f.name)
        if key not in data:
            continue
        value = data[key]
        if f.name in wire.OBJECT_FIELDS:
            value = wire.object_from_json(f.name, value)
        elif f.name in wire.STATUS_FIELDS:
            value = OrchestrationStatus.from_wire_value(int(value))
        elif f.name in wire.DATETIME_FIELDS and value is not None:
            value = wire.parse_datetime(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required member is missing
        raise MalformedMessageError(f"{cls.__name__} message is incomplete: {exc}") from exc


def from_json(data: Any) -> MessageData:
    if not isinstance(data, dict):
        raise MalformedMessageError("queue message is not a JSON object")
    type_name = _strip_assembly(data.get("$type"))
    if type_name and type_name != TYPE_MESSAGE_DATA:
        raise MalformedMessageError(f"queue message is a {type_name!r}, not a {TYPE_MESSAGE_DATA}")
    try:
        activity_id = uuid.UUID(str(data.get("ActivityId") or ZERO_GUID))
    except ValueError as exc:
        raise MalformedMessageError(f"ActivityId {data.get('ActivityId')!r} is not a GUID") from exc
    blob = data.get("CompressedBlobName")
    raw_tm = data.get("TaskMessage")
    task_message: TaskMessage | None = None
    if raw_tm is not None:
        if not isinstance(raw_tm, dict) or "OrchestrationInstance" not in raw_tm:
            raise MalformedMessageError("TaskMessage has no OrchestrationInstance")
        task_message = TaskMessage(
            event=_event_from_json(raw_tm.get("Event")),
            orchestration_instance=wire.instance_from_json(raw_tm["OrchestrationInstance"]),
            sequence_number=int(raw_tm.get("SequenceNumber") or 0),
        )
    elif not blob:
        raise MalformedMessageError("queue message has neither a TaskMessage nor a CompressedBlobName")
    sender = data.get("Sender")
    return MessageData(
        task_message=task_message,
        activity_id=activity_id,
        compressed_blob_name=blob or None,
        sequence_number=int(data.get("SequenceNumber") or 0),
        episode=data.get("Episode"),
        sender=wire.instance_from_json(sender)
        if isinstance(sender, dict) and sender.get("InstanceId") is not None
        else None,
        serializable_trace_context=data.get("SerializableTraceContext"),
    )


def decode(body: str | bytes) -> MessageData:
    """Read a queue body: raw JSON, or Base64 of it (what v1 workers wrote)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        try:
            stripped = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise MalformedMessageError("queue message is neither JSON nor Base64-encoded JSON") from exc
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(
            f"queue message is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from exc
    except RecursionError as exc:
        raise MalformedMessageError("queue message is JSON nested too deeply to read") from exc
    return from_json(data)


def as_malformed(exc: Exception) -> MalformedMessageError:
    """Why a body could not be read, whatever failed: a number that overflows, a field of
    the wrong type, a blob that is not gzip... A foreign message must never fail its batch."""
    if isinstance(exc, MalformedMessageError):
        return exc
    if isinstance(exc, PayloadTooLargeError):  # a blob larger than any worker may inflate
        return MalformedMessageError(str(exc))
    if isinstance(exc, RecursionError):
        return MalformedMessageError("queue message is nested too deeply to read")
    detail = f"{type(exc).__name__}: {exc}"
    return MalformedMessageError(f"queue message has a malformed field ({detail})")
