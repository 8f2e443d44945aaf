"""History events: one frozen dataclass per DurableTask.Core ``EventType``.

These are the engine's vocabulary. Field names are the C# ``[DataMember]`` names in
snake_case (``task_scheduled_id`` is the ``TaskScheduledId`` column), so the table and
queue codecs in ``durablehub.taskhub`` translate them mechanically. Payloads (``input``,
``result``) are kept as the JSON text that is stored, never decoded here.

Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from durablehub.models import FailureDetails, OrchestrationStatus


class EventType(enum.IntEnum):
    """DurableTask.Core.History.EventType; the integer is what queue JSON carries."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20
    ExecutionRewound = 21


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestrationInstance:
    """``DurableTask.Core.OrchestrationInstance``: one generation of an instance."""

    instance_id: str
    execution_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParentInstance:
    """``DurableTask.Core.ParentInstance``: who started a sub-orchestration."""

    name: str | None
    orchestration_instance: OrchestrationInstance
    task_schedule_id: int
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEvent:
    """Base of every event. ``event_id`` is the action id, or -1 for incoming events."""

    event_type: ClassVar[EventType]
    event_id: int = -1
    timestamp: datetime = field(default_factory=utcnow)
    is_played: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionStarted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionStarted
    orchestration_instance: OrchestrationInstance
    name: str
    version: str | None = None
    input: str | None = None
    parent_instance: ParentInstance | None = None
    tags: dict[str, str] | None = None
    correlation: str | None = None
    parent_trace_context: dict[str, Any] | None = None
    scheduled_start_time: datetime | None = None
    generation: int | None = None
    # Start a new trace for this execution (DTFx: continue-as-new with a fresh trace, or a
    # start whose client had none) rather than continuing ``parent_trace_context``.
    generate_new_trace: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionCompleted
    orchestration_status: OrchestrationStatus
    result: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionTerminated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionTerminated
    input: str | None = None  # the reason, as JSON text
    # Terminate running sub-orchestrations too (durabletask's ``recurse``). DTFx has no such
    # column; None, what a .NET client writes, means no.
    recurse: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskScheduled(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TaskScheduled
    name: str
    version: str | None = None
    input: str | None = None
    tags: dict[str, str] | None = None
    parent_trace_context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TaskCompleted
    task_scheduled_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TaskFailed
    task_scheduled_id: int
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationInstanceCreated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SubOrchestrationInstanceCreated
    name: str
    instance_id: str
    version: str | None = None
    input: str | None = None
    client_span_id: str | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationInstanceCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SubOrchestrationInstanceCompleted
    task_scheduled_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubOrchestrationInstanceFailed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.SubOrchestrationInstanceFailed
    task_scheduled_id: int
    reason: str | None = None
    details: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerCreated(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TimerCreated
    fire_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.TimerFired
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestratorStarted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.OrchestratorStarted


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestratorCompleted(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.OrchestratorCompleted


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSent(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EventSent
    instance_id: str
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRaised(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.EventRaised
    name: str
    input: str | None = None
    parent_trace_context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinueAsNew(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ContinueAsNew
    orchestration_status: OrchestrationStatus = OrchestrationStatus.CONTINUED_AS_NEW
    result: str | None = None
    failure_details: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericEvent(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.GenericEvent
    data: str | None = None
    # "Rewound: <EventType>" on a row that a rewind blanked out, as DTFx writes it.
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryState(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.HistoryState
    state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionSuspended(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionSuspended
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionResumed(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionResumed
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionRewound(HistoryEvent):
    event_type: ClassVar[EventType] = EventType.ExecutionRewound
    reason: str | None = None
    parent_execution_id: str | None = None
    instance_id: str | None = None
    parent_trace_context: dict[str, Any] | None = None


EVENT_CLASSES: dict[EventType, type[HistoryEvent]] = {
    cls.event_type: cls
    for cls in (
        ExecutionStarted,
        ExecutionCompleted,
        ExecutionTerminated,
        TaskScheduled,
        TaskCompleted,
        TaskFailed,
        SubOrchestrationInstanceCreated,
        SubOrchestrationInstanceCompleted,
        SubOrchestrationInstanceFailed,
        TimerCreated,
        TimerFired,
        OrchestratorStarted,
        OrchestratorCompleted,
        EventSent,
        EventRaised,
        ContinueAsNew,
        GenericEvent,
        HistoryState,
        ExecutionSuspended,
        ExecutionResumed,
        ExecutionRewound,
    )
}
