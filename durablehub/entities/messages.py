"""The reference's entity message and state formats (DurableTask.Core ``Entities/EventFormat``,
``Entities/StateFormat``), as JSON, so a hub written here reads like a Durable Functions one.

Messages to and from entities are ``EventRaised`` events:

* ``"op"``: a ``RequestMessage`` (an operation call or signal, or a lock request when it
  carries a ``lockset``); ``"op@<ISO time>"``: a signal that is due at that time;
* ``"release"``: a ``ReleaseMessage`` ending an orchestration's critical section;
* the request id (a GUID): the ``ResponseMessage`` answering a call or granting a lock set.

After every batch the entity's scheduler state (``SchedulerState``: the entity state as a JSON
string, the queue of waiting requests, the lock holder) is the ``Input`` of a fresh
ExecutionStarted, and the Instances row's ``CustomStatus`` is an ``EntityStatus``.

One key is durablehub's own: ``SchedulerState.processed`` maps the ids of recently received
requests to when they arrived, so a redelivered or re-sent request is recognised and applied
once. The reference's readers ignore keys they do not know.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from durablehub.entities.entity_id import EntityInstanceId
from durablehub.models import FailureDetails
from durablehub.telemetry.trace_context import KEYS as TRACE_CONTEXT_MEMBERS

__all__ = [
    "LOCK_GRANTED",
    "OPERATION_EVENT",
    "RELEASE_EVENT",
    "EntityStatus",
    "ReleaseMessage",
    "RequestMessage",
    "ResponseMessage",
    "SchedulerState",
    "format_time",
    "parse_time",
    "scheduled_event_name",
    "parse_event_name",
]

OPERATION_EVENT = "op"
RELEASE_EVENT = "release"
CONTINUE_EVENT = "continue"
LOCK_GRANTED = "Lock Acquisition Completed"  # the reference's result text; receivers ignore it
DEDUPLICATION_WINDOW = timedelta(minutes=30)  # the reference's entity message reorder window
MAX_REMEMBERED_REQUESTS = 5000  # per entity; beyond this the oldest ids are forgotten first
_MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """A UTC time as .NET writes a ``DateTime`` of kind Utc (7 fractional digits, ``Z``)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "0Z"  # pads year 1 too


def parse_time(text: str) -> datetime:
    """Parse an ISO time as .NET writes it (up to 7 fractional digits); naive means UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def scheduled_event_name(due: datetime) -> str:
    """``op@<time>``: the event name of a signal delivered at ``due``."""
    return f"{OPERATION_EVENT}@{format_time(due)}"


def parse_event_name(name: str) -> tuple[str, datetime | None]:
    """``("op", due)`` for ``op@<time>``, else ``(name, None)``."""
    if name.startswith(OPERATION_EVENT + "@"):
        try:
            return OPERATION_EVENT, parse_time(name[len(OPERATION_EVENT) + 1 :])
        except ValueError:
            return name, None
    return name, None


def failure_to_json(value: FailureDetails) -> dict[str, Any]:
    return {
        "ErrorType": value.error_type,
        "ErrorMessage": value.message,
        "StackTrace": value.stack_trace,
        "InnerFailure": failure_to_json(value.inner_failure) if value.inner_failure else None,
        "IsNonRetriable": value.is_non_retriable,
    }


def failure_from_json(data: dict[str, Any]) -> FailureDetails:
    inner = data.get("InnerFailure")
    return FailureDetails(
        message=data.get("ErrorMessage") or "",
        error_type=data.get("ErrorType") or "",
        stack_trace=data.get("StackTrace"),
        inner_failure=failure_from_json(inner) if isinstance(inner, dict) else None,
        is_non_retriable=bool(data.get("IsNonRetriable", False)),
    )


def _loads(text: str | None, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text or "")
    except ValueError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object")
    return data


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMessage:
    """An operation (call or signal) or a lock request, sent to an entity."""

    id: str
    operation: str | None = None
    input: str | None = None  # JSON text of the operation input
    is_signal: bool = False
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    scheduled_time: datetime | None = None
    timestamp: datetime = _MIN_TIME
    lockset: tuple[EntityInstanceId, ...] | None = None
    position: int = 0
    predecessor: datetime = _MIN_TIME  # the sender's previous request to this entity
    client_id: str | None = None  # durablehub's: which client sent a signal (ordering per client)
    # DTFx's ``parentTraceContext`` (a ``DistributedTraceContext``): the span of the call or
    # signal, parent of the entity's span for the operation.
    parent_trace_context: dict[str, Any] | None = None

    @property
    def is_lock_request(self) -> bool:
        return self.lockset is not None

    @property
    def sender(self) -> str | None:
        """Who sent the request, for ordering: the parent instance, or the client."""
        if self.parent_instance_id is not None:
            return self.parent_instance_id
        return f"client:{self.client_id}" if self.client_id else None

    def to_json(self) -> str:
        data: dict[str, Any] = {"op": self.operation}
        if self.is_signal:
            data["signal"] = True
        if self.input is not None:
            data["input"] = self.input
        data["id"] = self.id
        if self.parent_instance_id is not None:
            data["parent"] = self.parent_instance_id
        if self.parent_execution_id is not None:
            data["parentExecution"] = self.parent_execution_id
        if self.scheduled_time is not None:
            data["due"] = format_time(self.scheduled_time)
        data["Timestamp"] = format_time(self.timestamp)
        data["Predecessor"] = format_time(self.predecessor)
        if self.lockset is not None:
            data["lockset"] = [{"name": e.entity, "key": e.key} for e in self.lockset]
        if self.position:
            data["pos"] = self.position
        if self.client_id is not None:
            data["clientId"] = self.client_id
        data["IsLockRequest"] = self.is_lock_request
        if self.parent_trace_context is not None:
            context = self.parent_trace_context
            data["parentTraceContext"] = {
                **{k: context.get(k) for k in TRACE_CONTEXT_MEMBERS},
                **{k: v for k, v in context.items() if k not in TRACE_CONTEXT_MEMBERS},
            }
        data["createTrace"] = False  # the sender makes the span of the call or signal itself
        return _dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> RequestMessage:
        """Raises: ValueError: not a request message."""
        data = _loads(text, "entity request")
        if not isinstance(data.get("id"), str):
            raise ValueError("entity request has no id")
        raw_locks = data.get("lockset")
        lockset = (
            tuple(EntityInstanceId(str(e["name"]), str(e["key"])) for e in raw_locks)
            if isinstance(raw_locks, list)
            else None
        )
        due = data.get("due")
        stamp = data.get("Timestamp")
        predecessor = data.get("Predecessor")
        context = data.get("parentTraceContext")
        return cls(
            id=data["id"],
            operation=data.get("op"),
            input=data.get("input"),
            is_signal=bool(data.get("signal", False)),
            parent_instance_id=data.get("parent"),
            parent_execution_id=data.get("parentExecution"),
            scheduled_time=parse_time(due) if isinstance(due, str) else None,
            timestamp=parse_time(stamp) if isinstance(stamp, str) else _MIN_TIME,
            lockset=lockset,
            position=int(data.get("pos") or 0),
            predecessor=parse_time(predecessor) if isinstance(predecessor, str) else _MIN_TIME,
            client_id=data.get("clientId"),
            parent_trace_context=context if isinstance(context, dict) else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseMessage:
    """The answer to a call (``result`` or ``failure_details``), or a lock grant."""

    result: str | None = None  # JSON text of the operation's result
    failure_details: FailureDetails | None = None

    @property
    def is_error(self) -> bool:
        return self.failure_details is not None

    def to_json(self) -> str:
        data: dict[str, Any] = {"result": self.result}
        if self.failure_details is not None:
            data["exceptionType"] = self.failure_details.error_type
            data["failureDetails"] = failure_to_json(self.failure_details)
        return _dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> ResponseMessage:
        """Raises: ValueError: not a response message."""
        data = _loads(text, "entity response")
        details = data.get("failureDetails")
        failure = failure_from_json(details) if isinstance(details, dict) else None
        if failure is None and data.get("exceptionType") is not None:
            failure = FailureDetails(message=str(data.get("result")), error_type=str(data["exceptionType"]))
        result = data.get("result")
        return cls(result=result if isinstance(result, str) else None, failure_details=failure)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseMessage:
    """Ends critical section ``id`` of orchestration ``parent_instance_id``."""

    parent_instance_id: str
    id: str

    def to_json(self) -> str:
        return _dumps({"parent": self.parent_instance_id, "id": self.id})

    @classmethod
    def from_json(cls, text: str | None) -> ReleaseMessage:
        data = _loads(text, "entity release message")
        return cls(parent_instance_id=str(data.get("parent")), id=str(data.get("id")))


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityStatus:
    """The Instances row's ``CustomStatus`` of an entity: cheap to read, without the state."""

    entity_exists: bool = False
    queue_size: int = 0
    locked_by: str | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {}
        if self.entity_exists:
            data["entityExists"] = True
        if self.queue_size:
            data["queueSize"] = self.queue_size
        if self.locked_by is not None:
            data["lockedBy"] = self.locked_by
        return _dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> EntityStatus:
        try:
            data = _loads(text, "entity status")
        except ValueError:
            return cls()
        return cls(
            entity_exists=bool(data.get("entityExists", False)),
            queue_size=int(data.get("queueSize") or 0),
            locked_by=data.get("lockedBy"),
        )


@dataclass(slots=True, kw_only=True)
class SchedulerState:
    """An entity between batches: its state, waiting requests, lock holder, recent request ids."""

    exists: bool = False
    state: str | None = None  # the entity state as JSON text
    queue: list[RequestMessage] = field(default_factory=list)
    locked_by: str | None = None
    suspended: bool = False
    sorter: dict[str, Any] = field(default_factory=dict)  # the reference's MessageSorter, kept as read
    processed: dict[str, datetime] = field(default_factory=dict)  # request id → when it was received

    @property
    def is_empty(self) -> bool:
        """Nothing worth keeping: no state, no waiting request, no lock (``clean_entity_storage``)."""
        return not self.exists and not self.queue and self.locked_by is None

    def status(self) -> EntityStatus:
        return EntityStatus(entity_exists=self.exists, queue_size=len(self.queue), locked_by=self.locked_by)

    def copy(self) -> SchedulerState:
        sorter = json.loads(json.dumps(self.sorter))  # nested dicts: the copy must not share them
        return replace(self, queue=list(self.queue), sorter=sorter, processed=dict(self.processed))

    def remember(self, request_id: str, now: datetime) -> bool:
        """Note that ``request_id`` arrived; False if it had already (a duplicate)."""
        if request_id in self.processed:
            return False
        self.processed[request_id] = now
        return True

    def forget_old_requests(self, now: datetime) -> None:
        """Drop ids older than the window (or beyond the cap); those still queued are kept."""
        horizon = now - DEDUPLICATION_WINDOW
        queued = {m.id for m in self.queue}
        kept = sorted(
            ((t, i) for i, t in self.processed.items() if t >= horizon or i in queued), reverse=True
        )
        self.processed = {i: t for t, i in sorted(kept[:MAX_REMEMBERED_REQUESTS])}

    def to_json(self) -> str:
        data: dict[str, Any] = {}
        if self.exists:
            data["exists"] = True
        if self.state is not None:
            data["state"] = self.state
        if self.queue:
            data["queue"] = [json.loads(m.to_json()) for m in self.queue]
        if self.locked_by is not None:
            data["lockedBy"] = self.locked_by
        if self.suspended:
            data["suspended"] = True
        data["sorter"] = self.sorter
        if self.processed:
            data["processed"] = {i: format_time(t) for i, t in self.processed.items()}
        return _dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> SchedulerState:
        """The state stored by the last batch (``None`` or ``"null"``: a new entity).

        Raises:
            ValueError: the text is not a scheduler state.
        """
        if text is None or text in ("", "null"):
            return cls()
        data = _loads(text, "entity scheduler state")
        queue = [RequestMessage.from_json(_dumps(m)) for m in data.get("queue") or []]
        processed = {str(i): parse_time(t) for i, t in (data.get("processed") or {}).items()}
        sorter = data.get("sorter")
        return cls(
            exists=bool(data.get("exists", False)),
            state=data.get("state"),
            queue=queue,
            locked_by=data.get("lockedBy"),
            suspended=bool(data.get("suspended", False)),
            sorter=sorter if isinstance(sorter, dict) else {},
            processed=processed,
        )


def label(last_sent: dict[str, datetime], destination: str, now: datetime) -> tuple[datetime, datetime]:
    """``(timestamp, predecessor)`` of a sender's next request to ``destination``; notes it as sent.

    Timestamps increase per destination even if the clock does not, as the reference's do.
    """
    previous = last_sent.get(destination, _MIN_TIME)
    timestamp = max(now, previous + timedelta(microseconds=1))
    last_sent[destination] = timestamp
    return timestamp, previous


def derived_id(*parts: object) -> str:
    """A request id that a re-run of the same batch or episode produces again (for de-duplication)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\n".join(str(p) for p in parts)))


_ID_NAMESPACE = uuid.UUID("6f1c2a57-1f0e-4f5e-9a53-2d0b1e5c7a11")
