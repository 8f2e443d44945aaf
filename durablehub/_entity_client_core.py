"""Pure decisions of the clients' entity methods: signal messages, query filters, rows → metadata."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, check_size
from durablehub.entities.entity_id import EntityInstanceId, is_entity_instance_id
from durablehub.entities.messages import (
    OPERATION_EVENT,
    RELEASE_EVENT,
    EntityStatus,
    ReleaseMessage,
    RequestMessage,
    SchedulerState,
    label,
    scheduled_event_name,
)
from durablehub.entities.metadata import EntityMetadata, EntityQuery
from durablehub.instance_ids import check_no_control
from durablehub.models import OrchestrationStatus
from durablehub.taskhub.envelope import MessageData, TaskMessage
from durablehub.taskhub.names import escape_partition_key, unescape_partition_key

__all__ = [
    "EntityStatus",
    "SignalPlan",
    "metadata_from_row",
    "plan_release",
    "plan_signal",
    "query_filter",
    "signal_target",
]

_LOG = logging.getLogger("durablehub.client")
CLIENT_SENDER = ev.OrchestrationInstance(instance_id="", execution_id="")
MAX_DELAY = timedelta(days=6)  # longer delays hop: the entity sends the signal back to itself
ENTITY_SELECT = ["PartitionKey", "RowKey", "CustomStatus", "LastUpdatedTime"]


class SignalPlan:
    def __init__(
        self, instance_id: str, message: MessageData, delay: timedelta | None, timestamp: datetime | None
    ) -> None:
        self.instance_id = instance_id
        self.message = message
        self.delay = delay
        self._timestamp = timestamp

    def sent(self, last_sent: dict[str, datetime]) -> None:
        """Record the signal as sent: the client's next one to this entity follows it."""
        if self._timestamp is not None:
            last_sent[self.instance_id] = self._timestamp


def plan_signal(
    entity: Any,
    operation: Any,
    input: Any,
    signal_time: datetime | None,
    *,
    client_id: str | None = None,
    last_sent: dict[str, datetime] | None = None,
    now: datetime | None = None,
    max_payload_bytes: int | None = None,
    trace_context: dict[str, Any] | None = None,
) -> SignalPlan:
    """The message that signals ``operation`` on ``entity`` (now, or at ``signal_time``).

    Signals of one client (``client_id``) to one entity are delivered in the order sent: each
    carries the timestamp of the previous one (``last_sent``, updated by ``SignalPlan.sent``).
    ``trace_context`` (the client's producer span) is the parent of the entity's span.

    Raises:
        ValueError: not an entity id, or an empty operation name.
        PayloadError: ``input`` is not JSON-serializable.
        PayloadTooLargeError: its JSON is longer than ``max_payload_bytes``.
    """
    target = signal_target(entity, operation)
    now = now or datetime.now(UTC)
    what = f"input of operation {operation!r} on {target}"
    encoded = check_size(JSON_CODEC.encode(input, what=what), what=what, max_bytes=max_payload_bytes)
    due = None
    if signal_time is not None:
        due = signal_time.astimezone(UTC) if signal_time.tzinfo else signal_time.replace(tzinfo=UTC)
    timestamp = predecessor = datetime(1, 1, 1, tzinfo=UTC)  # a due signal is not in the chain
    labels = dict(last_sent or {})
    if due is None and client_id is not None:
        timestamp, predecessor = label(labels, str(target), now)
    request = RequestMessage(
        id=str(uuid.uuid4()),
        operation=operation,
        input=encoded,
        is_signal=True,
        scheduled_time=due,
        timestamp=timestamp,
        predecessor=predecessor,
        client_id=client_id if due is None else None,
        parent_trace_context=trace_context,
    )
    name = OPERATION_EVENT if due is None else scheduled_event_name(due)
    delay = min(due - now, MAX_DELAY) if due is not None and due > now else None
    event = ev.EventRaised(timestamp=now, name=name, input=request.to_json())
    return SignalPlan(str(target), _message(str(target), event), delay, labels.get(str(target)))


def signal_target(entity: Any, operation: Any) -> EntityInstanceId:
    """The entity a signal goes to, once its operation is known to be a name.

    Raises:
        ValueError: not an entity id, or an empty operation name.
    """
    target = EntityInstanceId.of(entity)
    if not isinstance(operation, str) or not operation:
        raise ValueError(f"operation must be a non-empty string, got {operation!r}")
    check_no_control(operation, "operation name")
    return target


def plan_release(entity_instance_id: str, locked_by: str) -> MessageData:
    """A release for a lock whose orchestration has ended (``clean_entity_storage``)."""
    release = ReleaseMessage(parent_instance_id=locked_by, id=str(uuid.uuid4()))
    return _message(entity_instance_id, ev.EventRaised(name=RELEASE_EVENT, input=release.to_json()))


def _message(instance_id: str, event: ev.HistoryEvent) -> MessageData:
    target = ev.OrchestrationInstance(instance_id=instance_id, execution_id=None)
    return MessageData(
        task_message=TaskMessage(event=event, orchestration_instance=target), sender=CLIENT_SENDER
    )


def name_prefix(prefix: str | None) -> str:
    """The instance-id prefix of an entity query: ``"Cart"`` → ``"@cart"``, ``"@Cart@k"`` → ``"@cart@k"``."""
    if not prefix:
        return "@"
    if not prefix.startswith("@"):
        return "@" + prefix.lower()
    at = prefix.find("@", 1)
    return prefix.lower() if at < 0 else prefix[:at].lower() + prefix[at:]


def query_filter(query: EntityQuery) -> tuple[str, dict[str, Any]]:
    low = escape_partition_key(name_prefix(query.instance_id_starts_with))
    clauses = ["RowKey eq ''", "PartitionKey ge @low and PartitionKey lt @high"]
    params: dict[str, Any] = {"low": low, "high": low[:-1] + chr(ord(low[-1]) + 1)}
    if query.last_modified_from is not None:
        clauses.append("LastUpdatedTime ge @modified_from")
        params["modified_from"] = _utc(query.last_modified_from)
    if query.last_modified_to is not None:
        clauses.append("LastUpdatedTime le @modified_to")
        params["modified_to"] = _utc(query.last_modified_to)
    return " and ".join(clauses), params


def query_select(query: EntityQuery) -> list[str] | None:
    return None if query.include_state else list(ENTITY_SELECT)


def holder_has_ended(row: Mapping[str, Any] | None) -> bool:
    """True if the lock holder's Instances row is gone or says it has finished."""
    if row is None:
        return True
    try:
        status = OrchestrationStatus.from_table_name(str(row.get("RuntimeStatus")))
    except ValueError:
        return False
    return status.is_terminal


def entity_instance_id_of(row: Mapping[str, Any]) -> str:
    return unescape_partition_key(row["PartitionKey"])


def metadata_from_row(
    row: Mapping[str, Any], *, include_state: bool, include_transient: bool = False
) -> EntityMetadata | None:
    """The entity a row describes, or None if it has no state (and transient ones are not wanted)."""
    instance_id = entity_instance_id_of(row)
    if not is_entity_instance_id(instance_id):
        return None
    status = EntityStatus.from_json(row.get("CustomStatus"))
    if not status.entity_exists and not include_transient:
        return None
    state: str | None = None
    if include_state and status.entity_exists:
        state = SchedulerState.from_json(row.get("Input")).state
    try:
        entity_id = EntityInstanceId.parse(instance_id)
    except ValueError as exc:  # written by another client, against durablehub's rules
        _LOG.warning("leaving %r out of the entities: %s", instance_id, exc)
        return None
    modified = row.get("LastUpdatedTime")
    return EntityMetadata(
        id=entity_id,
        last_modified=_utc(modified) if isinstance(modified, datetime) else datetime.min.replace(tzinfo=UTC),
        backlog_queue_size=status.queue_size,
        locked_by=status.locked_by,
        includes_state=include_state,
        serialized_state=state,
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
