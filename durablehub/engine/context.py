"""The runtime ``OrchestrationContext``: hands out sequence ids, records actions, settles tasks.

User code calls the public methods (``call_activity``, ``create_timer``, ...). Each call that
needs the runtime takes the next sequence id (0, 1, 2, ... as DurableTask.Core numbers them,
so ``EventId`` columns match what the C# provider writes) and records an action. The executor
(``replay.py``) uses the engine-facing methods below the ``--- engine interface ---`` line:
it sets the clock, confirms actions against history, settles tasks from completion events,
and drains the actions at the end of an episode. Nothing here does I/O.

Retries and long timers live here because they create further actions on their own:

* A call with a ``RetryPolicy`` that fails creates a timer (next id) and, when it fires,
  schedules the same call again (next id), as DTFx does: ``TaskScheduled(n)``,
  ``TaskFailed(n)``, ``TimerCreated(n+1)``, ``TimerFired(n+1)``, ``TaskScheduled(n+2)``.
* A timer more than ``MAX_SHORT_TIMER`` (6 days) away is chained in steps of at most
  ``LONG_TIMER_STEP`` (3 days), because no queue message may stay invisible for 7 days. The
  first step takes an id at the ``create_timer`` call; each later step takes the next id
  when the previous step fires. The user's task completes when the last step fires; a
  10-day timer is 4 steps (+3, +6, +9, +10 days).
"""

from __future__ import annotations

import enum
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
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
from durablehub.engine.codec import Codec
from durablehub.engine.determinism import ConfirmingEvent, check_confirmation, matches, unconfirmed_error
from durablehub.engine.entity_calls import EntityLock, OrchestrationEntities
from durablehub.instance_ids import check_new_instance_id
from durablehub.models import FailureDetails, OrchestrationStatus, qualified_name
from durablehub.task import (
    CompletableTask,
    OrchestrationContext,
    RetryableTask,
    RetryPolicy,
    Task,
    TaskFailedError,
    TimerTask,
    get_name,
)

__all__ = ["LONG_TIMER_STEP", "MAX_SHORT_TIMER", "UUID_NAMESPACE", "CallKind", "ReplayContext"]

MAX_SHORT_TIMER = timedelta(days=6)
LONG_TIMER_STEP = timedelta(days=3)
# durabletask-python's new_uuid(): uuid5 in this namespace over "{instance}_{time}_{counter}".
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
_UUID_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EPOCH = datetime(1970, 1, 1)


class CallKind(enum.Enum):
    """What a task id was scheduled as; a completion event must name the same kind."""

    ACTIVITY = "activity"
    SUB_ORCHESTRATION = "sub-orchestration"


@dataclass(slots=True)
class _Retry:
    policy: RetryPolicy
    task: RetryableTask[Any]
    template: ScheduleTask | CreateSubOrchestration
    first_attempt_at: datetime
    attempts: int = 1


@dataclass(slots=True)
class _Call:
    kind: CallKind
    name: str
    task: CompletableTask[Any]
    retry: _Retry | None = None
    target: str | None = None  # the child's instance id, for sub-orchestrations


@dataclass(slots=True)
class _Timer:
    final_fire_at: datetime  # naive UTC, like current_utc_datetime
    step_fire_at: datetime
    task: TimerTask | None  # None for a retry's back-off timer
    retry: _Retry | None = None


@dataclass(frozen=True, slots=True)
class _Buffered:
    name: str
    data: str | None
    order: int = field(compare=False)


class ReplayContext(OrchestrationContext):
    """One orchestration instance's context, kept with its executor between episodes."""

    def __init__(self, *, codec: Codec, default_version: str | None = None) -> None:
        self._codec = codec
        self._default_version = default_version  # of sub-orchestrations started without one
        self._patches: dict[str, bool] = {}  # is_patched answers of this execution
        self._recorded_patches: set[str] = set()  # patches the history records as taken
        self._new_patches: list[str] = []  # taken in this episode, to be recorded
        self._instance_id = ""
        self._name = ""
        self._parent_instance_id: str | None = None
        self._version: str | None = None
        self._now: datetime | None = None
        self._replaying = False
        self._next_id = 0
        self._uuid_counter = 0
        self._pending: dict[int, Action] = {}  # produced, not yet drained or confirmed by history
        self._calls: dict[int, _Call] = {}
        self._timers: dict[int, _Timer] = {}
        self._waiters: dict[str, deque[CompletableTask[Any]]] = {}
        self._waiter_names: dict[str, str] = {}  # casefolded → as first asked for (tracking logs)
        self._buffered: dict[str, deque[_Buffered]] = {}
        self._arrivals = 0
        self._custom_status: str | None = None
        self._completion: CompleteOrchestration | None = None
        self._completion_drained = False
        self._save_events = False
        # --- entities (durablehub.engine.entity_calls) ---
        self._execution_id: str | None = None
        self._entities = OrchestrationEntities(
            codec=codec,
            identity=lambda: (self._instance_id, self._execution_id),
            take_id=self._take_id,
            record=lambda action: self._pending.__setitem__(action.id, action),
            wait=self.wait_for_external_event,
            now=lambda: self.current_utc_datetime.replace(tzinfo=UTC),
        )

    # --- OrchestrationContext ---

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def parent_instance_id(self) -> str | None:
        return self._parent_instance_id

    @property
    def version(self) -> str | None:
        return self._version

    @property
    def current_utc_datetime(self) -> datetime:
        return self._now if self._now is not None else _EPOCH

    @property
    def is_replaying(self) -> bool:
        return self._replaying

    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        tags: dict[str, str] | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        name = get_name(activity)
        encoded = self._codec.encode(input, what=f"input of activity {name!r}")
        action = ScheduleTask(id=self._take_id(), name=name, input=encoded, tags=dict(tags) if tags else None)
        return self._schedule_call(action, CallKind.ACTIVITY, retry_policy, return_type)

    def call_sub_orchestrator(
        self,
        orchestrator: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        version: str | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        name = get_name(orchestrator)
        encoded = self._codec.encode(input, what=f"input of sub-orchestration {name!r}")
        if instance_id is not None:
            check_new_instance_id(instance_id)  # a client could not start it either
        task_id = self._take_id()
        child_id = instance_id if instance_id is not None else f"{self._instance_id}:{task_id:04x}"
        action = CreateSubOrchestration(
            id=task_id,
            name=name,
            instance_id=child_id,
            input=encoded,
            version=version if version is not None else self._default_version,
        )
        return self._schedule_call(action, CallKind.SUB_ORCHESTRATION, retry_policy, return_type)

    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        if isinstance(fire_at, timedelta):
            final = self.current_utc_datetime + fire_at
        elif isinstance(fire_at, datetime):
            final = _naive_utc(fire_at)
        else:
            raise TypeError(f"create_timer takes a datetime or a timedelta, got {type(fire_at).__qualname__}")
        task = TimerTask(final)
        self._start_timer(final, task=task, retry=None)
        return task

    def wait_for_external_event(self, name: str, *, data_type: Any = None) -> CompletableTask[Any]:
        if not isinstance(name, str) or not name:
            raise ValueError(f"event name must be a non-empty string, got {name!r}")
        task: CompletableTask[Any] = CompletableTask(result_type=data_type)
        buffered = self._buffered.get(name.casefold())
        if buffered:
            event = buffered.popleft()
            task.complete(self._codec.decode(event.data, data_type, what=f"data of event {event.name!r}"))
        else:
            self._waiters.setdefault(name.casefold(), deque()).append(task)
            self._waiter_names.setdefault(name.casefold(), name)
        return task

    def listening(self) -> tuple[str, ...]:
        """Names of the external events the orchestrator waits for now."""
        return tuple(self._waiter_names[key] for key, waiters in self._waiters.items() if waiters)

    def send_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        if not isinstance(instance_id, str) or not instance_id.strip():
            raise ValueError(f"instance_id must be a non-empty string, got {instance_id!r}")
        if not isinstance(event_name, str) or not event_name.strip():
            raise ValueError(f"event_name must be a non-empty string, got {event_name!r}")
        encoded = self._codec.encode(data, what=f"data of event {event_name!r}")
        task_id = self._take_id()
        self._pending[task_id] = SendEvent(id=task_id, instance_id=instance_id, name=event_name, data=encoded)

    def continue_as_new(
        self,
        new_input: Any,
        *,
        save_events: bool = False,
        new_version: str | None = None,
        new_trace: bool = False,
    ) -> None:
        if new_version is not None and not isinstance(new_version, str):
            raise TypeError(f"new_version must be a string, got {type(new_version).__name__}")
        if not isinstance(new_trace, bool):
            raise TypeError(f"new_trace must be a bool, got {type(new_trace).__name__}")
        encoded = self._codec.encode(new_input, what="input of continue_as_new")
        if self._completion is None:
            self._entities.release_all()
            self._completion = CompleteOrchestration(
                id=self._take_id(),
                status=OrchestrationStatus.CONTINUED_AS_NEW,
                new_input=encoded,
                new_version=new_version,
                new_trace=new_trace,
            )
            self._save_events = save_events

    def is_patched(self, name: str) -> bool:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"patch name must be a non-empty string, got {name!r}")
        answer = self._patches.get(name)
        if answer is None:
            answer = name in self._recorded_patches if self._replaying else True
            self._patches[name] = answer
            if answer and name not in self._recorded_patches:
                self._recorded_patches.add(name)
                self._new_patches.append(name)
        return answer

    def record_patches(self, names: Iterable[str]) -> None:
        """Patches the history records as taken (read before replay: the code asks first)."""
        self._recorded_patches.update(names)

    def drain_patches(self) -> tuple[str, ...]:
        """Patches taken since the last call, for the runtime to record."""
        drained, self._new_patches = tuple(self._new_patches), []
        return drained

    def set_custom_status(self, custom_status: Any) -> None:
        self._custom_status = self._codec.encode(custom_status, what="custom status")

    # --- entities: the requests are SendEvent actions (durablehub.engine.entity_calls) ---

    def call_entity(
        self, entity: Any, operation: str, input: Any = None, *, return_type: Any = None
    ) -> Task[Any]:
        return self._entities.call_entity(entity, operation, input, return_type=return_type)

    def signal_entity(
        self, entity: Any, operation: str, input: Any = None, *, signal_time: datetime | None = None
    ) -> None:
        self._entities.signal_entity(entity, operation, input, signal_time=signal_time)

    def lock_entities(self, entities: Any) -> Task[EntityLock]:
        return self._entities.lock_entities(entities)

    def new_uuid(self) -> str:
        moment = self.current_utc_datetime.strftime(_UUID_TIME_FORMAT)
        name = f"{self._instance_id}_{moment}_{self._uuid_counter}"
        self._uuid_counter += 1
        return str(uuid.uuid5(UUID_NAMESPACE, name))

    # --- engine interface (used by replay.py) ---

    @property
    def name(self) -> str:
        """The orchestrator name from ``ExecutionStarted``."""
        return self._name

    @property
    def custom_status(self) -> str | None:
        """The custom status as JSON text, or ``None``."""
        return self._custom_status

    @property
    def is_finished(self) -> bool:
        """True once the orchestration completed, failed, was terminated or continued as new."""
        return self._completion is not None

    def set_replaying(self, replaying: bool) -> None:
        self._replaying = replaying

    def set_time(self, timestamp: datetime) -> None:
        """Set ``current_utc_datetime`` (from an ``OrchestratorStarted`` event)."""
        self._now = _naive_utc(timestamp)

    def start(self, event: ev.ExecutionStarted) -> None:
        """Take the instance's identity from its ``ExecutionStarted`` event."""
        self._instance_id = event.orchestration_instance.instance_id
        self._execution_id = event.orchestration_instance.execution_id
        self._name = event.name
        self._version = event.version
        parent = event.parent_instance
        self._parent_instance_id = parent.orchestration_instance.instance_id if parent is not None else None
        if self._now is None:  # histories built without OrchestratorStarted still get a clock
            self._now = _naive_utc(event.timestamp)

    def confirm(self, event: ConfirmingEvent) -> None:
        """Match a history event against the action the code produced with its id.

        Raises:
            NonDeterminismError: the code did not produce that action.
        """
        action = self._pending.pop(event.event_id, None)
        check_confirmation(event, action, calls_made=self._next_id)

    def try_confirm(self, event: ConfirmingEvent) -> bool:
        """Confirm the action with the event's id if the code produced that very action."""
        action = self._pending.get(event.event_id)
        if action is None or not matches(event, action):
            return False
        del self._pending[event.event_id]
        return True

    def check_all_confirmed(self) -> None:
        """At the end of a replayed episode, every action must have been confirmed.

        Raises:
            NonDeterminismError: the code produced actions the history does not record.
        """
        if self._pending:
            raise unconfirmed_error(self._pending[i] for i in sorted(self._pending))

    def confirm_completion(self, event: ev.ExecutionCompleted | ev.ContinueAsNew) -> None:
        """History records the end of this execution: the completion is no longer the episode's to report.

        If replay did not reach the end (say the runtime failed the instance without running
        it), the recorded end is adopted as it is.
        """
        if self._completion is None:
            self._completion = CompleteOrchestration(
                id=event.event_id,
                status=event.orchestration_status,
                result=event.result,
                failure_details=event.failure_details,
            )
        self._completion_drained = True

    def complete_call(self, task_id: int, kind: CallKind, result: str | None) -> bool:
        """Complete call ``task_id`` with JSON ``result``; False if no such open call."""
        call = self._take_call(task_id, kind)
        if call is None:
            return False
        call.task.complete(
            self._codec.decode(result, call.task.result_type, what=f"result of {kind.value} {call.name!r}")
        )
        return True

    def fail_call(self, task_id: int, kind: CallKind, failure: FailureDetails) -> bool:
        """Fail call ``task_id``, or retry it per its policy; False if no such open call."""
        call = self._take_call(task_id, kind)
        if call is None:
            return False
        retry = call.retry
        if retry is not None and not failure.is_non_retriable:
            now = self.current_utc_datetime
            delay = retry.policy.next_delay(
                attempts_made=retry.attempts, first_attempt_at=retry.first_attempt_at, now=now
            )
            if delay is not None:
                retry.attempts += 1
                self._start_timer(now + delay, task=None, retry=retry)
                return True
        message = f"{kind.value} {call.name!r} (task {task_id}) failed: {failure}"
        call.task.fail(TaskFailedError(message, failure))
        return True

    def fire_timer(self, timer_id: int) -> bool:
        """A step of timer ``timer_id`` fired; False if no such open timer."""
        timer = self._timers.pop(timer_id, None)
        if timer is None:
            return False
        if timer.task is not None and timer.task.is_cancelled:
            return True  # known and expected: the orchestration stopped waiting for it
        if timer.step_fire_at < timer.final_fire_at:
            timer.step_fire_at = min(timer.step_fire_at + LONG_TIMER_STEP, timer.final_fire_at)
            self._add_timer_step(timer)
        elif timer.retry is not None:
            self._schedule_retry(timer.retry)
        elif timer.task is not None:
            timer.task.complete(None)
        return True

    def raise_event(self, name: str, data: str | None) -> None:
        """Deliver external event ``name`` to the oldest waiter, or buffer it."""
        key = name.casefold()
        waiters = self._waiters.get(key)
        if waiters and not self.is_finished:
            task = waiters.popleft()
            task.complete(self._codec.decode(data, task.result_type, what=f"data of event {name!r}"))
            return
        self._arrivals += 1
        self._buffered.setdefault(key, deque()).append(_Buffered(name, data, self._arrivals))

    def finish(self, output: Any) -> None:
        """The orchestrator returned ``output``: complete, unless it already ended."""
        if self._completion is not None:
            return
        try:
            encoded = self._codec.encode(output, what=f"output of orchestrator {self._name!r}")
        except Exception as exc:  # an output that cannot be stored fails the instance
            self.fail(exc)
            return
        self._entities.release_all()
        self._completion = CompleteOrchestration(
            id=self._take_id(), status=OrchestrationStatus.COMPLETED, result=encoded
        )

    def fail(self, error: BaseException, *, discard_actions: bool = False) -> None:
        """Fail the orchestration with ``error``; ``discard_actions`` drops this episode's actions."""
        if self._completion is not None:
            return
        if discard_actions:
            self._pending.clear()
        self._entities.release_all()
        self._completion = CompleteOrchestration(
            id=self._take_id(), status=OrchestrationStatus.FAILED, failure_details=_failure_details(error)
        )

    def terminate(self, reason: str | None, *, recurse: bool = False) -> None:
        """Terminate with ``reason`` (JSON text); actions not yet drained are dropped.

        With ``recurse``, the sub-orchestrations still running are terminated too: their ids
        travel on the completion action, for the runtime to message.
        """
        if self._completion is not None:
            return
        self._pending.clear()
        self._entities.release_all()
        children: tuple[str, ...] = ()
        if recurse:
            children = tuple(
                call.target
                for _, call in sorted(self._calls.items())
                if call.kind is CallKind.SUB_ORCHESTRATION and call.target is not None
            )
        self._completion = CompleteOrchestration(
            id=self._take_id(),
            status=OrchestrationStatus.TERMINATED,
            result=reason,
            terminate_children=children,
        )

    def drain_actions(self) -> tuple[Action, ...]:
        """The episode's actions in id order, the completion last; the runtime now owns them."""
        actions: list[Action] = [self._pending[i] for i in sorted(self._pending)]
        self._pending.clear()
        if self._completion is not None and not self._completion_drained:
            self._completion_drained = True
            completion = self._completion
            if completion.status is OrchestrationStatus.CONTINUED_AS_NEW and self._save_events:
                completion = replace(completion, carryover_events=self._carryover_events())
            actions.append(completion)
        return tuple(actions)

    # --- internals ---

    def _take_id(self) -> int:
        task_id = self._next_id
        self._next_id += 1
        return task_id

    def _schedule_call(
        self,
        action: ScheduleTask | CreateSubOrchestration,
        kind: CallKind,
        retry_policy: RetryPolicy | None,
        return_type: Any,
    ) -> CompletableTask[Any]:
        retry: _Retry | None = None
        task: CompletableTask[Any]
        if retry_policy is None:
            task = CompletableTask(result_type=return_type)
        elif isinstance(retry_policy, RetryPolicy):
            task = RetryableTask(retry_policy, result_type=return_type)
            retry = _Retry(retry_policy, task, action, first_attempt_at=self.current_utc_datetime)
        else:
            raise TypeError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__qualname__}")
        self._pending[action.id] = action
        self._calls[action.id] = _Call(kind, action.name, task, retry, target=_target_of(action))
        return task

    def _schedule_retry(self, retry: _Retry) -> None:
        action = replace(retry.template, id=self._take_id())
        kind = CallKind.ACTIVITY if isinstance(action, ScheduleTask) else CallKind.SUB_ORCHESTRATION
        self._pending[action.id] = action
        self._calls[action.id] = _Call(kind, action.name, retry.task, retry, target=_target_of(action))

    def _start_timer(self, final: datetime, *, task: TimerTask | None, retry: _Retry | None) -> None:
        now = self.current_utc_datetime
        step = now + LONG_TIMER_STEP if final - now > MAX_SHORT_TIMER else final
        self._add_timer_step(_Timer(final_fire_at=final, step_fire_at=step, task=task, retry=retry))

    def _add_timer_step(self, timer: _Timer) -> None:
        timer_id = self._take_id()
        self._pending[timer_id] = CreateTimer(id=timer_id, fire_at=timer.step_fire_at.replace(tzinfo=UTC))
        self._timers[timer_id] = timer

    def _take_call(self, task_id: int, kind: CallKind) -> _Call | None:
        call = self._calls.get(task_id)
        if call is None or call.kind is not kind:
            return None
        del self._calls[task_id]
        return call

    def _carryover_events(self) -> tuple[ev.EventRaised, ...]:
        events = sorted((b for queue in self._buffered.values() for b in queue), key=lambda b: b.order)
        timestamp = self.current_utc_datetime.replace(tzinfo=UTC)
        return tuple(ev.EventRaised(name=b.name, input=b.data, timestamp=timestamp) for b in events)


def _target_of(action: ScheduleTask | CreateSubOrchestration) -> str | None:
    return action.instance_id if isinstance(action, CreateSubOrchestration) else None


def _naive_utc(moment: datetime) -> datetime:
    # Aware datetimes are converted to UTC; naive ones are taken as UTC already.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.utcoffset() is not None else moment


def _failure_details(error: BaseException) -> FailureDetails:
    if isinstance(error, TaskFailedError):
        # Keep the failed task's own details as the inner failure, so callers see the root cause.
        return FailureDetails(
            message=str(error),
            error_type=qualified_name(type(error)),
            stack_trace="".join(traceback.format_exception(type(error), error, error.__traceback__)),
            inner_failure=error.details,
        )
    return FailureDetails.from_exception(error)
