"""Protobuf messages of the Durable Task protocol ↔ durablehub's engine types, both ways.

The only module that knows both vocabularies. History events (``ev.*`` ↔ ``pb.HistoryEvent``),
orchestrator actions (``durablehub.engine.actions`` ↔ ``pb.OrchestratorAction``), failure
details, trace contexts, instance states and statuses. Payloads stay JSON text on both sides.

What the protocol cannot carry is dropped on the way out and comes back empty: an event's
``is_played``, ``ExecutionStarted.correlation`` and ``generation``, ``TaskFailed.reason`` /
``details`` (rebuilt from the failure details), ``SubOrchestrationInstanceCreated.client_span_id``,
``EventRaised.parent_trace_context``, ``GenericEvent.reason`` and ``HistoryState.state``. Times
are timezone-aware UTC here and ``google.protobuf.Timestamp`` there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import json_format, timestamp_pb2, wrappers_pb2

from durablehub.engine import history as ev
from durablehub.engine.actions import (
    Action,
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durablehub.entities.batch import OperationOutcome
from durablehub.entities.entity import SignalAction, StartOrchestrationAction
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import (
    OPERATION_EVENT,
    RELEASE_EVENT,
    ReleaseMessage,
    RequestMessage,
    label,
    scheduled_event_name,
)
from durablehub.entities.metadata import EntityMetadata
from durablehub.instance_ids import check_instance_id, check_new_instance_id, check_no_control
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.sidecar.protocol import pb
from durablehub.state import OrchestrationState

__all__ = [
    "TranslationError",
    "action_from_proto",
    "action_to_proto",
    "event_from_proto",
    "event_to_proto",
    "failure_from_proto",
    "failure_to_proto",
    "state_to_proto",
    "status_from_proto",
    "status_to_proto",
    "timestamp",
    "to_datetime",
]


class TranslationError(ValueError):
    """A protocol message durablehub cannot represent (named in the message)."""


# ------------------------------------------------------------------------------ scalars


def text(message: Any, field: str) -> str | None:
    """The value of a ``google.protobuf.StringValue`` field, None when unset."""
    return getattr(message, field).value if message.HasField(field) else None


def string_value(value: str | None) -> wrappers_pb2.StringValue | None:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _when(message: Any, field: str) -> datetime | None:
    return to_datetime(getattr(message, field)) if message.HasField(field) else None


def status_to_proto(status: OrchestrationStatus) -> pb.OrchestrationStatus:
    # The engine's enum uses the proto's integers; the stubs type the proto enum as its own class.
    return cast("pb.OrchestrationStatus", int(status))


def status_from_proto(value: int) -> OrchestrationStatus:
    try:
        return OrchestrationStatus(value)
    except ValueError:
        raise TranslationError(f"unknown OrchestrationStatus {value}") from None


# ---------------------------------------------------------------- nested objects


def failure_to_proto(details: FailureDetails | None) -> pb.TaskFailureDetails | None:
    if details is None:
        return None
    message = pb.TaskFailureDetails(
        errorType=details.error_type,
        errorMessage=details.message,
        stackTrace=string_value(details.stack_trace),
        innerFailure=failure_to_proto(details.inner_failure),
        isNonRetriable=details.is_non_retriable,
    )
    for key, value in (details.properties or {}).items():
        json_format.ParseDict(value, message.properties[key])
    return message


def failure_from_proto(message: pb.TaskFailureDetails) -> FailureDetails:
    return FailureDetails(
        message=message.errorMessage,
        error_type=message.errorType,
        stack_trace=text(message, "stackTrace"),
        inner_failure=failure_from_proto(message.innerFailure) if message.HasField("innerFailure") else None,
        is_non_retriable=message.isNonRetriable,
        properties={k: json_format.MessageToDict(v) for k, v in message.properties.items()} or None,
    )


def _failure_of(message: Any) -> FailureDetails | None:
    return failure_from_proto(message.failureDetails) if message.HasField("failureDetails") else None


# The engine keeps DTFx's trace-context columns (``TraceParent``, ``SpanId``, ``TraceState``).
def trace_to_proto(context: Mapping[str, Any] | None) -> pb.TraceContext | None:
    if not context:
        return None
    return pb.TraceContext(
        traceParent=context.get("TraceParent") or "",
        spanID=context.get("SpanId") or "",
        traceState=string_value(context.get("TraceState")),
    )


def orchestration_trace_to_proto(context: Mapping[str, Any] | None) -> pb.OrchestrationTraceContext | None:
    """The orchestration span an ``ExecutionStarted`` context records (``SpanId``,
    ``ActivityStartTime``), for the SDK to end the span with that id and start time."""
    from durablehub.telemetry.trace_context import orchestration_span_of, parse_start_time

    own = orchestration_span_of(context)
    if own is None:
        return None
    start = parse_start_time((context or {}).get("ActivityStartTime"))
    return pb.OrchestrationTraceContext(spanID=string_value(own.span_id), spanStartTime=timestamp(start))


def trace_from_proto(message: Any, field: str = "parentTraceContext") -> dict[str, Any] | None:
    if not message.HasField(field):
        return None
    context = getattr(message, field)
    return {
        "TraceParent": context.traceParent,
        "SpanId": context.spanID,
        "TraceState": text(context, "traceState"),
    }


def instance_to_proto(instance: ev.OrchestrationInstance) -> pb.OrchestrationInstance:
    return pb.OrchestrationInstance(
        instanceId=instance.instance_id, executionId=string_value(instance.execution_id)
    )


def instance_from_proto(message: pb.OrchestrationInstance) -> ev.OrchestrationInstance:
    return ev.OrchestrationInstance(instance_id=message.instanceId, execution_id=text(message, "executionId"))


def _tags(message: Any) -> dict[str, str] | None:
    return dict(message.tags) or None


# ------------------------------------------------------------------------ history events


def event_to_proto(event: ev.HistoryEvent) -> pb.HistoryEvent:
    """``event`` as the protocol's ``HistoryEvent`` (see the module docstring for what is lost)."""
    kind, body = _body_to_proto(event)
    message = pb.HistoryEvent(eventId=event.event_id, timestamp=timestamp(event.timestamp))
    getattr(message, kind).CopyFrom(body)
    return message


def _body_to_proto(e: ev.HistoryEvent) -> tuple[str, Any]:
    match e:
        case ev.ExecutionStarted():
            parent = None
            if e.parent_instance is not None:
                p = e.parent_instance
                parent = pb.ParentInstanceInfo(
                    taskScheduledId=p.task_schedule_id,
                    name=string_value(p.name),
                    version=string_value(p.version),
                    orchestrationInstance=instance_to_proto(p.orchestration_instance),
                )
            return "executionStarted", pb.ExecutionStartedEvent(
                name=e.name,
                version=string_value(e.version),
                input=string_value(e.input),
                orchestrationInstance=instance_to_proto(e.orchestration_instance),
                parentInstance=parent,
                scheduledStartTimestamp=timestamp(e.scheduled_start_time),
                parentTraceContext=trace_to_proto(e.parent_trace_context),
                tags=e.tags or {},
            )
        case ev.ExecutionCompleted():
            return "executionCompleted", pb.ExecutionCompletedEvent(
                orchestrationStatus=status_to_proto(e.orchestration_status),
                result=string_value(e.result),
                failureDetails=failure_to_proto(e.failure_details),
            )
        case ev.ExecutionTerminated():
            return "executionTerminated", pb.ExecutionTerminatedEvent(
                input=string_value(e.input), recurse=bool(e.recurse)
            )
        case ev.TaskScheduled():
            return "taskScheduled", pb.TaskScheduledEvent(
                name=e.name,
                version=string_value(e.version),
                input=string_value(e.input),
                parentTraceContext=trace_to_proto(e.parent_trace_context),
                tags=e.tags or {},
            )
        case ev.TaskCompleted():
            return "taskCompleted", pb.TaskCompletedEvent(
                taskScheduledId=e.task_scheduled_id, result=string_value(e.result)
            )
        case ev.TaskFailed():
            return "taskFailed", pb.TaskFailedEvent(
                taskScheduledId=e.task_scheduled_id, failureDetails=_failure_or_reason(e)
            )
        case ev.SubOrchestrationInstanceCreated():
            return "subOrchestrationInstanceCreated", pb.SubOrchestrationInstanceCreatedEvent(
                instanceId=e.instance_id,
                name=e.name,
                version=string_value(e.version),
                input=string_value(e.input),
                tags=e.tags or {},
            )
        case ev.SubOrchestrationInstanceCompleted():
            return "subOrchestrationInstanceCompleted", pb.SubOrchestrationInstanceCompletedEvent(
                taskScheduledId=e.task_scheduled_id, result=string_value(e.result)
            )
        case ev.SubOrchestrationInstanceFailed():
            return "subOrchestrationInstanceFailed", pb.SubOrchestrationInstanceFailedEvent(
                taskScheduledId=e.task_scheduled_id, failureDetails=_failure_or_reason(e)
            )
        case ev.TimerCreated():
            return "timerCreated", pb.TimerCreatedEvent(fireAt=timestamp(e.fire_at))
        case ev.TimerFired():
            return "timerFired", pb.TimerFiredEvent(fireAt=timestamp(e.fire_at), timerId=e.timer_id)
        case ev.OrchestratorStarted():
            return "orchestratorStarted", pb.OrchestratorStartedEvent()
        case ev.OrchestratorCompleted():
            return "orchestratorCompleted", pb.OrchestratorCompletedEvent()
        case ev.EventSent():
            return "eventSent", pb.EventSentEvent(
                instanceId=e.instance_id, name=e.name, input=string_value(e.input)
            )
        case ev.EventRaised():
            return "eventRaised", pb.EventRaisedEvent(name=e.name, input=string_value(e.input))
        case ev.ContinueAsNew():
            return "continueAsNew", pb.ContinueAsNewEvent(input=string_value(e.result))
        case ev.GenericEvent():
            return "genericEvent", pb.GenericEvent(data=string_value(e.data))
        case ev.HistoryState():
            return "historyState", pb.HistoryStateEvent()
        case ev.ExecutionSuspended():
            return "executionSuspended", pb.ExecutionSuspendedEvent(input=string_value(e.reason))
        case ev.ExecutionResumed():
            return "executionResumed", pb.ExecutionResumedEvent(input=string_value(e.reason))
        case ev.ExecutionRewound():
            return "executionRewound", pb.ExecutionRewoundEvent(
                reason=string_value(e.reason),
                parentExecutionId=string_value(e.parent_execution_id),
                instanceId=string_value(e.instance_id),
                parentTraceContext=trace_to_proto(e.parent_trace_context),
            )
    raise TranslationError(f"no protocol event for {type(e).__name__}")


def _failure_or_reason(e: ev.TaskFailed | ev.SubOrchestrationInstanceFailed) -> pb.TaskFailureDetails:
    """A failure recorded without details (by an older writer) still reaches the SDK as one."""
    details = e.failure_details or FailureDetails(
        message=e.reason or "", error_type="Unknown", stack_trace=e.details
    )
    message = failure_to_proto(details)
    assert message is not None
    return message


def event_from_proto(message: pb.HistoryEvent) -> ev.HistoryEvent:
    """The engine's event for a protocol ``HistoryEvent``.

    Raises:
        TranslationError: an event kind durablehub does not record (the entity events).
    """
    kind = message.WhichOneof("eventType")
    if kind is None:
        raise TranslationError("a HistoryEvent without an event")
    build = _FROM_PROTO.get(kind)
    if build is None:
        raise TranslationError(f"durablehub does not record {kind} events")
    when = _when(message, "timestamp") or datetime.now(UTC)
    return build(getattr(message, kind), message.eventId, when)


def _execution_started(m: Any, event_id: int, when: datetime) -> ev.HistoryEvent:
    parent = None
    if m.HasField("parentInstance"):
        p = m.parentInstance
        parent = ev.ParentInstance(
            name=text(p, "name"),
            orchestration_instance=instance_from_proto(p.orchestrationInstance),
            task_schedule_id=p.taskScheduledId,
            version=text(p, "version"),
        )
    return ev.ExecutionStarted(
        event_id=event_id,
        timestamp=when,
        orchestration_instance=instance_from_proto(m.orchestrationInstance),
        name=m.name,
        version=text(m, "version"),
        input=text(m, "input"),
        parent_instance=parent,
        tags=_tags(m),
        parent_trace_context=trace_from_proto(m),
        scheduled_start_time=_when(m, "scheduledStartTimestamp"),
    )


def _task_failed(m: Any, event_id: int, when: datetime) -> ev.HistoryEvent:
    details = _failure_of(m)
    return ev.TaskFailed(
        event_id=event_id,
        timestamp=when,
        task_scheduled_id=m.taskScheduledId,
        reason=details.message if details else None,
        details=details.stack_trace if details else None,
        failure_details=details,
    )


def _sub_failed(m: Any, event_id: int, when: datetime) -> ev.HistoryEvent:
    details = _failure_of(m)
    return ev.SubOrchestrationInstanceFailed(
        event_id=event_id,
        timestamp=when,
        task_scheduled_id=m.taskScheduledId,
        reason=details.message if details else None,
        details=details.stack_trace if details else None,
        failure_details=details,
    )


_FROM_PROTO: dict[str, Any] = {
    "executionStarted": _execution_started,
    "executionCompleted": lambda m, i, t: ev.ExecutionCompleted(
        event_id=i,
        timestamp=t,
        orchestration_status=status_from_proto(m.orchestrationStatus),
        result=text(m, "result"),
        failure_details=_failure_of(m),
    ),
    "executionTerminated": lambda m, i, t: ev.ExecutionTerminated(
        event_id=i, timestamp=t, input=text(m, "input"), recurse=m.recurse or None
    ),
    "taskScheduled": lambda m, i, t: ev.TaskScheduled(
        event_id=i,
        timestamp=t,
        name=m.name,
        version=text(m, "version"),
        input=text(m, "input"),
        tags=_tags(m),
        parent_trace_context=trace_from_proto(m),
    ),
    "taskCompleted": lambda m, i, t: ev.TaskCompleted(
        event_id=i, timestamp=t, task_scheduled_id=m.taskScheduledId, result=text(m, "result")
    ),
    "taskFailed": _task_failed,
    "subOrchestrationInstanceCreated": lambda m, i, t: ev.SubOrchestrationInstanceCreated(
        event_id=i,
        timestamp=t,
        name=m.name,
        instance_id=m.instanceId,
        version=text(m, "version"),
        input=text(m, "input"),
        tags=_tags(m),
    ),
    "subOrchestrationInstanceCompleted": lambda m, i, t: ev.SubOrchestrationInstanceCompleted(
        event_id=i, timestamp=t, task_scheduled_id=m.taskScheduledId, result=text(m, "result")
    ),
    "subOrchestrationInstanceFailed": _sub_failed,
    "timerCreated": lambda m, i, t: ev.TimerCreated(event_id=i, timestamp=t, fire_at=to_datetime(m.fireAt)),
    "timerFired": lambda m, i, t: ev.TimerFired(
        event_id=i, timestamp=t, timer_id=m.timerId, fire_at=to_datetime(m.fireAt)
    ),
    "orchestratorStarted": lambda m, i, t: ev.OrchestratorStarted(event_id=i, timestamp=t),
    "orchestratorCompleted": lambda m, i, t: ev.OrchestratorCompleted(event_id=i, timestamp=t),
    "eventSent": lambda m, i, t: ev.EventSent(
        event_id=i, timestamp=t, instance_id=m.instanceId, name=m.name, input=text(m, "input")
    ),
    "eventRaised": lambda m, i, t: ev.EventRaised(
        event_id=i, timestamp=t, name=m.name, input=text(m, "input")
    ),
    "continueAsNew": lambda m, i, t: ev.ContinueAsNew(event_id=i, timestamp=t, result=text(m, "input")),
    "genericEvent": lambda m, i, t: ev.GenericEvent(event_id=i, timestamp=t, data=text(m, "data")),
    "historyState": lambda m, i, t: ev.HistoryState(event_id=i, timestamp=t),
    "executionSuspended": lambda m, i, t: ev.ExecutionSuspended(
        event_id=i, timestamp=t, reason=text(m, "input")
    ),
    "executionResumed": lambda m, i, t: ev.ExecutionResumed(event_id=i, timestamp=t, reason=text(m, "input")),
    "executionRewound": lambda m, i, t: ev.ExecutionRewound(
        event_id=i,
        timestamp=t,
        reason=text(m, "reason"),
        parent_execution_id=text(m, "parentExecutionId"),
        instance_id=text(m, "instanceId"),
        parent_trace_context=trace_from_proto(m),
    ),
}


# ------------------------------------------------------------------------------- actions


@dataclass
class EntitySender:
    """What an orchestration's entity requests need to be written as durablehub writes them:
    who sends them, when, and the label of its last request to each entity (kept in order)."""

    instance: ev.OrchestrationInstance
    now: datetime
    last_sent: dict[str, datetime] = field(default_factory=dict)


def action_from_proto(message: pb.OrchestratorAction, *, sender: EntitySender | None = None) -> Action:
    """The engine's action for an SDK's ``OrchestratorAction``; entity requests need ``sender``.

    An SDK worker's answer is checked like a client's call: ids, names, times and statuses it
    could not have produced from durablehub's own rules are refused, naming the field.

    Raises:
        TranslationError: a kind durablehub does not serve (named), an empty action, or a
            malformed one (naming the field, e.g. ``createSubOrchestration.instanceId``).
    """
    kind = message.WhichOneof("orchestratorActionType")
    try:
        return _action(kind, message, sender)
    except TranslationError:
        raise
    except (ValueError, IndexError, TypeError, OverflowError) as exc:  # a check not named below
        raise TranslationError(f"action {message.id} ({kind}) is malformed: {exc}") from None


def _field(path: str, check: Any, value: Any) -> Any:
    """``check(value)``, its ValueError as a TranslationError naming ``path``."""
    try:
        return check(value)
    except (ValueError, TypeError) as exc:
        raise TranslationError(f"{path}: {exc}") from None


def _name(path: str, value: str) -> str:
    if not value.strip():
        raise TranslationError(f"{path} must be a non-empty name, got {value!r}")
    return _no_control(path, value)


def _no_control(path: str, value: str) -> str:
    """``value`` without control characters: names are written into log lines, where a CR or
    LF would forge a line of its own."""
    checked: str = _field(path, lambda v: check_no_control(v, path), value)
    return checked


def _time(message: Any, path: str, *, required: bool) -> datetime | None:
    """A timestamp field as a datetime; unset is None (refused when ``required``)."""
    name = path.rsplit(".", 1)[-1]
    if not message.HasField(name):
        if required:
            raise TranslationError(f"{path} is missing")
        return None
    try:
        return to_datetime(getattr(message, name))
    except (ValueError, OverflowError) as exc:
        raise TranslationError(f"{path} is not a time durablehub can store: {exc}") from None


# How an orchestration may end; RUNNING, PENDING or SUSPENDED would leave it running forever.
_FINAL_STATUSES = frozenset(
    {
        OrchestrationStatus.COMPLETED,
        OrchestrationStatus.FAILED,
        OrchestrationStatus.TERMINATED,
        OrchestrationStatus.CONTINUED_AS_NEW,
    }
)


def _action(kind: str | None, message: pb.OrchestratorAction, sender: EntitySender | None) -> Action:
    m: Any  # the chosen action, one message type per case below
    i = message.id
    match kind:
        case "sendEntityMessage" if sender is not None:
            return _entity_request(i, message.sendEntityMessage, sender)
        case "scheduleTask":
            m = message.scheduleTask
            return ScheduleTask(
                id=i,
                name=_name("scheduleTask.name", m.name),
                input=text(m, "input"),
                version=text(m, "version"),
                tags=_tags(m),
            )
        case "createTimer":
            fire_at = _time(message.createTimer, "createTimer.fireAt", required=True)
            assert fire_at is not None
            return CreateTimer(id=i, fire_at=fire_at)
        case "createSubOrchestration":
            m = message.createSubOrchestration
            return CreateSubOrchestration(
                id=i,
                name=_name("createSubOrchestration.name", m.name),
                # The rule a client's start and durablehub's own orchestrations follow.
                instance_id=_field("createSubOrchestration.instanceId", check_new_instance_id, m.instanceId),
                input=text(m, "input"),
                version=text(m, "version"),
            )
        case "sendEvent":
            m = message.sendEvent
            return SendEvent(
                id=i,
                instance_id=_field("sendEvent.instance.instanceId", check_instance_id, m.instance.instanceId),
                name=_name("sendEvent.name", m.name),
                data=text(m, "data"),
            )
        case "completeOrchestration":
            m = message.completeOrchestration
            status = _field(
                "completeOrchestration.orchestrationStatus", status_from_proto, m.orchestrationStatus
            )
            if status not in _FINAL_STATUSES:
                raise TranslationError(
                    f"completeOrchestration.orchestrationStatus is {status.name}; an orchestration "
                    "ends COMPLETED, FAILED, TERMINATED or CONTINUED_AS_NEW"
                )
            carried = tuple(
                _field(f"completeOrchestration.carryoverEvents[{n}]", event_from_proto, e)
                for n, e in enumerate(m.carryoverEvents)
            )
            if any(not isinstance(e, ev.EventRaised) for e in carried):
                raise TranslationError("continue-as-new can carry over only eventRaised events")
            as_new = status is OrchestrationStatus.CONTINUED_AS_NEW
            return CompleteOrchestration(
                id=i,
                status=status,
                result=None if as_new else text(m, "result"),
                failure_details=_failure_of(m),
                new_input=text(m, "result") if as_new else None,
                new_version=text(m, "newVersion"),
                carryover_events=carried,
            )
        case None:
            raise TranslationError("an OrchestratorAction without an action")
    raise TranslationError(f"durablehub does not serve the {kind} action yet")


def check_action_ids(actions: Sequence[Action]) -> None:
    """An episode's new actions each record a history event under their id: two sharing one
    would make one event stand for both on replay.

    Raises:
        TranslationError: two actions share an id (named).
    """
    seen: set[int] = set()
    for n, action in enumerate(actions):
        if isinstance(action, CompleteOrchestration):
            continue
        if action.id in seen:
            raise TranslationError(
                f"actions[{n}].id {action.id} is the id of an earlier action of the same answer"
            )
        seen.add(action.id)


def _entity_id(path: str, value: str) -> str:
    """An entity's instance id as sent (``@name@key``), checked as durablehub's own are."""
    _field(path, EntityInstanceId.parse, value)
    return value


def _entity_request(action_id: int, m: pb.SendEntityMessageAction, sender: EntitySender) -> SendEvent:
    """An SDK's entity request as the ``EventSent`` durablehub's own orchestrations record (the
    Durable Functions format, which durabletask's executor also replays): the request JSON
    carries the SDK's request id, which names the entity's answer."""
    parent = sender.instance
    kind = m.WhichOneof("EntityMessageType")
    if kind == "entityUnlockSent":
        u = m.entityUnlockSent
        target = _entity_id("entityUnlockSent.targetInstanceId", u.targetInstanceId.value)
        release = ReleaseMessage(
            parent_instance_id=parent.instance_id,
            id=_name("entityUnlockSent.criticalSectionId", u.criticalSectionId),
        )
        return SendEvent(id=action_id, instance_id=target, name=RELEASE_EVENT, data=release.to_json())
    if kind == "entityLockRequested":
        lock = m.entityLockRequested
        lockset = tuple(
            _field(f"entityLockRequested.lockSet[{n}]", EntityInstanceId.parse, e)
            for n, e in enumerate(lock.lockSet)
        )
        if not 0 <= lock.position < len(lockset):
            raise TranslationError(
                f"entityLockRequested.position is {lock.position}; the lock set has {len(lockset)} entities"
            )
        target = lock.lockSet[lock.position]
        timestamp, predecessor = label(sender.last_sent, target, sender.now)
        request = RequestMessage(
            id=_name("entityLockRequested.criticalSectionId", lock.criticalSectionId),
            parent_instance_id=parent.instance_id,
            parent_execution_id=parent.execution_id,
            timestamp=timestamp,
            predecessor=predecessor,
            lockset=lockset,
            position=lock.position,
        )
        return SendEvent(id=action_id, instance_id=target, name=OPERATION_EVENT, data=request.to_json())
    if kind in ("entityOperationCalled", "entityOperationSignaled"):
        op = getattr(m, kind)
        target = _entity_id(f"{kind}.targetInstanceId", op.targetInstanceId.value)
        due = _time(op, f"{kind}.scheduledTime", required=False)
        timestamp = predecessor = datetime(1, 1, 1, tzinfo=UTC)  # a due signal is not in the chain
        if due is None:
            timestamp, predecessor = label(sender.last_sent, target, sender.now)
        request = RequestMessage(
            id=_name(f"{kind}.requestId", op.requestId),
            operation=_no_control(f"{kind}.operation", op.operation),
            input=text(op, "input"),
            is_signal=kind == "entityOperationSignaled",
            parent_instance_id=parent.instance_id,
            parent_execution_id=parent.execution_id,
            scheduled_time=due,
            timestamp=timestamp,
            predecessor=predecessor,
        )
        name = OPERATION_EVENT if due is None else scheduled_event_name(due)
        return SendEvent(id=action_id, instance_id=target, name=name, data=request.to_json())
    raise TranslationError(f"an entity message without a request ({kind})")


def entity_batch_request(
    entity_id: EntityInstanceId, operation: str, request_id: str, state: str | None, input: str | None
) -> pb.EntityBatchRequest:
    """One operation for an SDK worker to run on ``state`` (the entity's JSON text, or None)."""
    return pb.EntityBatchRequest(
        instanceId=str(entity_id),
        entityState=string_value(state),
        operations=[
            pb.OperationRequest(operation=operation, requestId=request_id, input=string_value(input))
        ],
    )


def operation_outcome(batch: pb.EntityBatchResult) -> OperationOutcome:
    """The outcome of the one operation an ``EntityBatchRequest`` carried.

    Raises:
        TranslationError: a malformed answer (naming the field): the operation then fails,
            as an operation that raised would.
    """
    if batch.HasField("failureDetails"):  # the whole batch failed
        return OperationOutcome(failure=failure_from_proto(batch.failureDetails))
    if len(batch.results) != 1:
        raise TranslationError(f"expected the result of 1 operation, got {len(batch.results)}")
    result = batch.results[0]
    if result.HasField("failure"):
        return OperationOutcome(failure=failure_from_proto(result.failure.failureDetails))
    actions: list[SignalAction | StartOrchestrationAction] = []
    for n, action in enumerate(batch.actions):
        path = f"actions[{n}]"
        if action.HasField("sendSignal"):
            signal = action.sendSignal
            actions.append(
                SignalAction(
                    target=_field(f"{path}.sendSignal.instanceId", EntityInstanceId.parse, signal.instanceId),
                    operation=_name(f"{path}.sendSignal.name", signal.name),
                    input=text(signal, "input"),
                    signal_time=_time(signal, f"{path}.sendSignal.scheduledTime", required=False),
                )
            )
        elif action.HasField("startNewOrchestration"):
            start = action.startNewOrchestration
            instance_id = _field(
                f"{path}.startNewOrchestration.instanceId", check_new_instance_id, start.instanceId
            )
            actions.append(
                StartOrchestrationAction(
                    name=_name(f"{path}.startNewOrchestration.name", start.name),
                    instance_id=instance_id,
                    input=text(start, "input"),
                )
            )
    return OperationOutcome(
        result=text(result.success, "result"), state=text(batch, "entityState"), actions=tuple(actions)
    )


def entity_to_proto(entity: EntityMetadata) -> pb.EntityMetadata:
    return pb.EntityMetadata(
        instanceId=str(entity.id),
        lastModifiedTime=timestamp(entity.last_modified),
        backlogQueueSize=entity.backlog_queue_size,
        lockedBy=string_value(entity.locked_by),
        serializedState=string_value(entity.serialized_state) if entity.includes_state else None,
    )


def action_to_proto(action: Action) -> pb.OrchestratorAction:
    """``action`` as the SDK would have sent it (the inverse of ``action_from_proto``)."""
    match action:
        case ScheduleTask():
            return pb.OrchestratorAction(
                id=action.id,
                scheduleTask=pb.ScheduleTaskAction(
                    name=action.name,
                    version=string_value(action.version),
                    input=string_value(action.input),
                    tags=action.tags or {},
                ),
            )
        case CreateTimer():
            return pb.OrchestratorAction(
                id=action.id, createTimer=pb.CreateTimerAction(fireAt=timestamp(action.fire_at))
            )
        case CreateSubOrchestration():
            return pb.OrchestratorAction(
                id=action.id,
                createSubOrchestration=pb.CreateSubOrchestrationAction(
                    instanceId=action.instance_id,
                    name=action.name,
                    version=string_value(action.version),
                    input=string_value(action.input),
                ),
            )
        case SendEvent():
            return pb.OrchestratorAction(
                id=action.id,
                sendEvent=pb.SendEventAction(
                    instance=pb.OrchestrationInstance(instanceId=action.instance_id),
                    name=action.name,
                    data=string_value(action.data),
                ),
            )
        case CompleteOrchestration():
            as_new = action.status is OrchestrationStatus.CONTINUED_AS_NEW
            return pb.OrchestratorAction(
                id=action.id,
                completeOrchestration=pb.CompleteOrchestrationAction(
                    orchestrationStatus=status_to_proto(action.status),
                    result=string_value(action.new_input if as_new else action.result),
                    failureDetails=failure_to_proto(action.failure_details),
                    newVersion=string_value(action.new_version),
                    carryoverEvents=[event_to_proto(e) for e in action.carryover_events],
                ),
            )
    raise TranslationError(f"not an orchestrator action: {action!r}")


# ------------------------------------------------------------------------ instance state


def state_to_proto(state: OrchestrationState, *, payloads: bool = True) -> pb.OrchestrationState:
    """An instance as ``GetInstance`` and ``QueryInstances`` answer it (``payloads``: with
    input, output and custom status)."""
    return pb.OrchestrationState(
        instanceId=state.instance_id,
        name=state.name,
        version=string_value(state.version),
        orchestrationStatus=status_to_proto(state.runtime_status),
        scheduledStartTimestamp=timestamp(state.scheduled_start_time),
        createdTimestamp=timestamp(state.created_at),
        lastUpdatedTimestamp=timestamp(state.last_updated_at),
        input=string_value(state.serialized_input) if payloads else None,
        output=string_value(state.serialized_output) if payloads else None,
        customStatus=string_value(state.serialized_custom_status) if payloads else None,
        failureDetails=failure_to_proto(state.failure_details),
        executionId=string_value(state.execution_id),
        completedTimestamp=timestamp(state.completed_at),
        tags=state.tags or {},
    )
