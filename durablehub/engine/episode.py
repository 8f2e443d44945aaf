"""What the runtime must write and send for one episode: a pure translation of its actions.

``plan_episode`` turns an ``EpisodeResult`` into the history events to append after the
episode's own new events (``OrchestratorStarted`` and the incoming events, which the runtime
already holds), and the messages to send, the way DurableTask.Core's orchestration
dispatcher does:

=======================  =====================================  ==========================================
action                   history (``event_id`` = action id)     message
=======================  =====================================  ==========================================
ScheduleTask             TaskScheduled                          the same TaskScheduled → work-item queue
CreateTimer              TimerCreated                           TimerFired(timer_id) → own control queue,
                                                                visible at fire_at
CreateSubOrchestration   SubOrchestrationInstanceCreated        ExecutionStarted(parent_instance with
                                                                task_schedule_id = id) → child, new
                                                                execution id
SendEvent                EventSent                              EventRaised → target instance
complete / fail /        ExecutionCompleted, then               SubOrchestrationInstanceCompleted or
terminate                OrchestratorCompleted                  ...Failed(task_scheduled_id) → parent,
                                                                if this is a sub-orchestration;
                                                                recursive terminate: Execution-
                                                                Terminated → each running child
continue as new          ContinueAsNew (no OrchestratorCom-     ExecutionStarted (new execution id,
                         pleted: the generation ends here)      generation + 1) and the carried-over
                                                                EventRaised → this instance
=======================  =====================================  ==========================================

Messages addressed to this instance's next execution (continue-as-new) may be run in the same
work item instead of being enqueued, as DurableTask.Core does: see ``EpisodePlan.next_generation``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.actions import (
    Action,
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durablehub.engine.patches import patch_record
from durablehub.engine.replay import EpisodeResult
from durablehub.entities.entity_id import is_entity_instance_id
from durablehub.entities.messages import RequestMessage
from durablehub.models import OrchestrationStatus
from durablehub.telemetry.trace_context import child_of_orchestration, context_for, orchestration_span_of

__all__ = [
    "EpisodePlan",
    "OutboundMessage",
    "derived_execution_id",
    "new_execution_id",
    "plan_episode",
    "sub_orchestration_call",
    "sub_orchestration_start",
]


def new_execution_id() -> str:
    """A fresh execution id, formatted as DurableTask.Core does (``Guid.ToString("N")``)."""
    return uuid.uuid4().hex


# Execution ids this engine makes for a child or a next generation are derived from the
# episode that makes them, where the reference draws a new Guid: two workers that both run the
# same episode (one of them has lost its lease and does not know yet) then send the same start,
# which the receiver drops as a duplicate, instead of two rival executions of one instance with
# the events carried over to one of them lost with the other.
_EXECUTION_NAMESPACE = uuid.UUID("6f0b6c1e-2f57-4d5e-9a3c-8d1e0f6a7b21")


def derived_execution_id(parent_execution_id: str | None, what: str) -> str:
    """The execution id of what an execution starts (``what``: "continue-as-new", "sub:{id}",
    or "sub:{id}#{n}" for the n-th time the same call starts its child again)."""
    if parent_execution_id is None:
        return new_execution_id()
    return uuid.uuid5(_EXECUTION_NAMESPACE, f"{parent_execution_id}/{what}").hex


def sub_orchestration_call(attempt: int, task_id: int) -> str:
    """The ``what`` of ``derived_execution_id`` for a call's ``attempt``-th start (0: the first).

    The durabletask SDK retries a sub-orchestration under the id and instance id of the call it
    retries, so each attempt needs an execution id of its own."""
    return f"sub:{task_id}" if attempt == 0 else f"sub:{task_id}#{attempt}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """One message to send; the runtime picks the queue and wraps it in the wire envelope."""

    target_instance_id: str
    target_execution_id: str | None
    """The execution the message belongs to; ``None`` for whichever is current (raised events)."""
    event: ev.HistoryEvent
    visible_at: datetime | None = None
    """For timers: keep the message invisible until then (chained below 7 days by the engine)."""
    to_work_items: bool = False
    """True for activities (the shared work-item queue); else the target's control queue."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodePlan:
    """History to append and messages to send for one episode."""

    history: tuple[ev.HistoryEvent, ...]
    messages: tuple[OutboundMessage, ...]
    runtime_status: OrchestrationStatus
    """The instance's status after the episode (RUNNING, SUSPENDED, or how it ended)."""
    completion: CompleteOrchestration | None = None
    next_execution_id: str | None = None
    """The execution id of the next generation after a continue-as-new."""

    @property
    def next_generation(self) -> tuple[OutboundMessage, ...]:
        """The messages that start the next generation (continue-as-new), in order."""
        if self.next_execution_id is None:
            return ()
        return tuple(m for m in self.messages if m.target_execution_id == self.next_execution_id)


def plan_episode(
    result: EpisodeResult,
    *,
    started: ev.ExecutionStarted,
    now: datetime,
    new_execution_id: Callable[[], str] | None = None,
    started_before: Mapping[int, int] | None = None,
    trace_salt: int = 0,
) -> EpisodePlan:
    """Translate ``result`` for the execution that ``started`` began.

    Args:
        result: the executor's episode result.
        started: this execution's ``ExecutionStarted`` (identity, parent, name, version, tags).
        now: the timestamp of the new events, as timezone-aware UTC.
        new_execution_id: makes execution ids for started children and the next generation;
            by default they are derived from this execution's id (``derived_execution_id``).
        started_before: per action id, how many children the history records it started
            already (a call retried under its own id starts its child again).
        trace_salt: the history's length before the episode: with the action id, it makes the
            client span ids of the episode's actions (an id reused by a retry gets a new span).
    """
    planner = _Planner(started, now, new_execution_id, started_before or {}, trace_salt)
    if result.patches:
        planner.history.append(patch_record(result.patches, now=now))
    for action in result.actions:
        planner.add(action)
    completion = result.completion
    if completion is not None:
        status = completion.status
    else:
        status = OrchestrationStatus.SUSPENDED if result.is_suspended else OrchestrationStatus.RUNNING
    if completion is None or completion.status is not OrchestrationStatus.CONTINUED_AS_NEW:
        planner.history.append(ev.OrchestratorCompleted(timestamp=now))
    return EpisodePlan(
        history=tuple(planner.history),
        messages=tuple(planner.messages),
        runtime_status=status,
        completion=completion,
        next_execution_id=planner.next_execution_id,
    )


def sub_orchestration_start(
    parent: ev.ExecutionStarted,
    *,
    task_id: int,
    instance_id: str,
    name: str,
    version: str | None,
    input: str | None,
    execution_id: str,
    now: datetime,
) -> ev.ExecutionStarted:
    """The message that starts a child of ``parent``'s execution, for its call ``task_id``."""
    return ev.ExecutionStarted(
        timestamp=now,
        orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
        name=name,
        version=version,
        input=input,
        parent_instance=ev.ParentInstance(
            name=parent.name,
            orchestration_instance=parent.orchestration_instance,
            task_schedule_id=task_id,
            version=parent.version,
        ),
    )


class _Planner:
    def __init__(
        self,
        started: ev.ExecutionStarted,
        now: datetime,
        new_execution_id: Callable[[], str] | None,
        started_before: Mapping[int, int],
        trace_salt: int = 0,
    ) -> None:
        self._started = started
        self._trace_salt = trace_salt
        self._started_before = started_before
        self._self = started.orchestration_instance
        self._now = now
        self._new_execution_id = new_execution_id
        self.history: list[ev.HistoryEvent] = []
        self.messages: list[OutboundMessage] = []
        self.next_execution_id: str | None = None

    def _client_span(self, kind: str, action_id: int) -> tuple[str, dict[str, Any]] | None:
        """DTFx's client span of an action: its id, and the context its message carries."""
        return child_of_orchestration(
            self._started.parent_trace_context,
            execution_id=self._self.execution_id,
            what=f"{kind}:{action_id}:{self._trace_salt}",
        )

    def _execution_id_for(self, what: str) -> str:
        if self._new_execution_id is not None:
            return self._new_execution_id()
        return derived_execution_id(self._started.orchestration_instance.execution_id, what)

    def add(self, action: Action) -> None:
        match action:
            case ScheduleTask():
                self._schedule_task(action)
            case CreateTimer():
                self._create_timer(action)
            case CreateSubOrchestration():
                self._create_sub_orchestration(action)
            case SendEvent():
                self._send_event(action)
            case CompleteOrchestration() if action.status is OrchestrationStatus.CONTINUED_AS_NEW:
                self._continue_as_new(action)
            case CompleteOrchestration():
                self._complete(action)
            case _:
                raise TypeError(f"not an orchestrator action: {action!r}")

    def _send(
        self,
        instance_id: str,
        execution_id: str | None,
        event: ev.HistoryEvent,
        *,
        visible_at: datetime | None = None,
        to_work_items: bool = False,
    ) -> None:
        self.messages.append(
            OutboundMessage(
                target_instance_id=instance_id,
                target_execution_id=execution_id,
                event=event,
                visible_at=visible_at,
                to_work_items=to_work_items,
            )
        )

    def _schedule_task(self, action: ScheduleTask) -> None:
        client = self._client_span("task", action.id)
        event = ev.TaskScheduled(
            event_id=action.id,
            timestamp=self._now,
            name=action.name,
            version=action.version,
            input=action.input,
            tags=action.tags,
            parent_trace_context=client[1] if client else None,
        )
        self.history.append(event)
        self._send(self._self.instance_id, self._self.execution_id, event, to_work_items=True)

    def _create_timer(self, action: CreateTimer) -> None:
        self.history.append(ev.TimerCreated(event_id=action.id, timestamp=self._now, fire_at=action.fire_at))
        fired = ev.TimerFired(timestamp=self._now, timer_id=action.id, fire_at=action.fire_at)
        self._send(self._self.instance_id, self._self.execution_id, fired, visible_at=action.fire_at)

    def _create_sub_orchestration(self, action: CreateSubOrchestration) -> None:
        client = self._client_span("sub", action.id)
        self.history.append(
            ev.SubOrchestrationInstanceCreated(
                event_id=action.id,
                timestamp=self._now,
                name=action.name,
                instance_id=action.instance_id,
                version=action.version,
                input=action.input,
                client_span_id=client[0] if client else None,
            )
        )
        start = sub_orchestration_start(
            self._started,
            task_id=action.id,
            instance_id=action.instance_id,
            name=action.name,
            version=action.version,
            input=action.input,
            execution_id=self._execution_id_for(
                sub_orchestration_call(self._started_before.get(action.id, 0), action.id)
            ),
            now=self._now,
        )
        if client is not None:
            start = dataclasses.replace(start, parent_trace_context=client[1])
        self._send(action.instance_id, start.orchestration_instance.execution_id, start)

    def _send_event(self, action: SendEvent) -> None:
        data = self._with_entity_client_span(action)
        self.history.append(
            ev.EventSent(
                event_id=action.id,
                timestamp=self._now,
                instance_id=action.instance_id,
                name=action.name,
                input=data,
            )
        )
        own = orchestration_span_of(self._started.parent_trace_context)  # DTFx: Activity.Current
        raised = ev.EventRaised(
            timestamp=self._now,
            name=action.name,
            input=data,
            parent_trace_context=context_for(own) if own else None,
        )
        self._send(action.instance_id, None, raised)

    def _with_entity_client_span(self, action: SendEvent) -> str | None:
        """An entity operation request with the context of its client (call) or producer
        (signal) span, emitted once its episode is committed (``tracing.episode_committed``);
        the history's ``EventSent`` keeps it, for the call's span when the answer comes."""
        if not is_entity_instance_id(action.instance_id):
            return action.data
        try:
            request = RequestMessage.from_json(action.data)
        except ValueError:  # a release, or a message this engine did not write
            return action.data
        if request.operation is None or request.is_lock_request or request.parent_trace_context:
            return action.data
        client = self._client_span("entity", action.id)
        if client is None:
            return action.data
        return dataclasses.replace(request, parent_trace_context=client[1]).to_json()

    def _complete(self, action: CompleteOrchestration) -> None:
        self.history.append(
            ev.ExecutionCompleted(
                event_id=action.id,
                timestamp=self._now,
                orchestration_status=action.status,
                result=action.result,
                failure_details=action.failure_details,
            )
        )
        for child in action.terminate_children:
            self._send(
                child, None, ev.ExecutionTerminated(timestamp=self._now, input=action.result, recurse=True)
            )
        parent = self._started.parent_instance
        if parent is None:
            return
        notice: ev.HistoryEvent
        if action.status is OrchestrationStatus.COMPLETED:
            notice = ev.SubOrchestrationInstanceCompleted(
                timestamp=self._now, task_scheduled_id=parent.task_schedule_id, result=action.result
            )
        else:  # FAILED or TERMINATED; DTFx reports both as a failure, the reason being the result
            details = action.failure_details
            notice = ev.SubOrchestrationInstanceFailed(
                timestamp=self._now,
                task_scheduled_id=parent.task_schedule_id,
                reason=details.message if details is not None else action.result,
                details=details.stack_trace if details is not None else None,
                failure_details=details,
            )
        target = parent.orchestration_instance
        self._send(target.instance_id, target.execution_id, notice)

    def _continue_as_new(self, action: CompleteOrchestration) -> None:
        self.history.append(
            ev.ContinueAsNew(event_id=action.id, timestamp=self._now, result=action.new_input)
        )
        execution_id = self._execution_id_for("continue-as-new")
        self.next_execution_id = execution_id
        started = self._started
        start = ev.ExecutionStarted(
            timestamp=self._now,
            orchestration_instance=ev.OrchestrationInstance(
                instance_id=self._self.instance_id, execution_id=execution_id
            ),
            name=started.name,
            version=action.new_version if action.new_version is not None else started.version,
            input=action.new_input,
            parent_instance=started.parent_instance,
            tags=dict(started.tags) if started.tags else None,
            generation=(started.generation or 0) + 1,
            # The orchestration span goes on across generations (DTFx copies the context),
            # unless the code asked for a new trace: the worker starts it (GenerateNewTrace).
            parent_trace_context=dict(started.parent_trace_context)
            if started.parent_trace_context and not action.new_trace
            else None,
            generate_new_trace=action.new_trace,
        )
        self._send(self._self.instance_id, execution_id, start)
        for carried in action.carryover_events:
            self._send(self._self.instance_id, execution_id, carried)
