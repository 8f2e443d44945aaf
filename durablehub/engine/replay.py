"""OrchestrationExecutor: one instance's history events in, its actions out.

The executor owns the orchestrator's generator and a ``ReplayContext``. It is built once per
instance and kept by the worker's cache between episodes, so each event is applied once:
``execute(past, new)`` replays a stored history into a fresh executor (``is_replaying`` is
True for ``past``), after which ``resume(new)`` feeds only events that arrived since the last
episode. Both return an ``EpisodeResult`` whose actions are the runtime's to perform and
record (``durablehub.engine.episode``); the executor then treats them as recorded, so the
confirming events it produced (``TaskScheduled``, ...) must not be fed back to a warm executor.

Each event type has one ``_apply_<event>`` handler (dict dispatch). After every event the
generator is advanced as far as its awaited task allows, so a warm executor and a cold
replay of the same history reach the same state. An exception escaping user code, or a
``NonDeterminismError``, ends the orchestration as FAILED; the executor itself never raises
for bad history, except when misused (``OrchestrationStateError``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable, Generator, Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.actions import Action, CompleteOrchestration
from durablehub.engine.codec import JSON_CODEC, Codec, is_structured_type
from durablehub.engine.context import CallKind, ReplayContext
from durablehub.engine.determinism import CONFIRMING_EVENTS
from durablehub.engine.patches import patches_recorded
from durablehub.errors import NonDeterminismError, OrchestrationStateError
from durablehub.models import FailureDetails
from durablehub.task import Orchestrator, Task, WhenAllTask, WhenAnyTask

__all__ = ["EpisodeResult", "OrchestrationExecutor"]

_LOG = logging.getLogger("durablehub.engine")

# Incoming events wait while the instance is suspended; control events and the events
# recording the instance's own actions do not.
_HELD_WHILE_SUSPENDED = (
    ev.TaskCompleted,
    ev.TaskFailed,
    ev.SubOrchestrationInstanceCompleted,
    ev.SubOrchestrationInstanceFailed,
    ev.TimerFired,
    ev.EventRaised,
)
# Once the orchestration has ended, only events for continue_as_new(save_events=True) and the
# history's record of the end still matter.
_MATTER_AFTER_THE_END = (ev.EventRaised, ev.ExecutionCompleted, ev.ContinueAsNew)
UNKNOWN_ERROR_TYPE = "Unknown"  # error_type for failures recorded without FailureDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeResult:
    """What one episode produced."""

    actions: tuple[Action, ...]
    """New actions in id order; a ``CompleteOrchestration`` (if any) is last."""
    custom_status: str | None
    """The current custom status as JSON text (``None``: never set or cleared)."""
    is_complete: bool
    """The orchestration has ended (in this episode or before)."""
    is_suspended: bool
    """The instance is suspended; incoming events are held until it is resumed."""
    patches: tuple[str, ...] = ()
    """Patches ``ctx.is_patched`` took in this episode, to be recorded (``engine.patches``)."""
    listening: tuple[str, ...] = ()
    """External events the orchestrator waits for at the end of the episode (tracking logs)."""

    @property
    def completion(self) -> CompleteOrchestration | None:
        """The completion action if the orchestration ended in this episode."""
        last = self.actions[-1] if self.actions else None
        return last if isinstance(last, CompleteOrchestration) else None


class OrchestrationExecutor:
    """Replays one orchestration instance; pure, and kept by the runtime between episodes."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        codec: Codec = JSON_CODEC,
        logger: logging.Logger | None = None,
        default_version: str | None = None,
    ) -> None:
        if not callable(orchestrator):
            raise TypeError(f"orchestrator must be callable, got {orchestrator!r}")
        self._orchestrator = orchestrator
        self._codec = codec
        self._log = logger or _LOG
        self._ctx = ReplayContext(codec=codec, default_version=default_version)
        self._generator: Generator[Any, Any, Any] | None = None
        self._awaiting: Task[Any] | None = None
        self._used = False
        self._started = False
        self._suspended = False
        self._held: list[ev.HistoryEvent] = []
        self._handlers: dict[type[ev.HistoryEvent], Callable[[Any], None]] = {
            ev.ExecutionStarted: self._apply_execution_started,
            ev.OrchestratorStarted: self._apply_orchestrator_started,
            ev.OrchestratorCompleted: self._apply_orchestrator_completed,
            ev.TaskScheduled: self._apply_confirmation,
            ev.TimerCreated: self._apply_confirmation,
            ev.SubOrchestrationInstanceCreated: self._apply_confirmation,
            ev.EventSent: self._apply_confirmation,
            ev.TaskCompleted: self._apply_task_completed,
            ev.TaskFailed: self._apply_task_failed,
            ev.SubOrchestrationInstanceCompleted: self._apply_sub_orchestration_completed,
            ev.SubOrchestrationInstanceFailed: self._apply_sub_orchestration_failed,
            ev.TimerFired: self._apply_timer_fired,
            ev.EventRaised: self._apply_event_raised,
            ev.ExecutionTerminated: self._apply_execution_terminated,
            ev.ExecutionSuspended: self._apply_execution_suspended,
            ev.ExecutionResumed: self._apply_execution_resumed,
            ev.ExecutionCompleted: self._apply_execution_completed,
            ev.ContinueAsNew: self._apply_execution_completed,
            # Events with nothing to replay.
            ev.GenericEvent: self._apply_nothing,
            ev.HistoryState: self._apply_nothing,
            ev.ExecutionRewound: self._apply_nothing,
        }

    @property
    def instance_id(self) -> str:
        return self._ctx.instance_id

    @property
    def is_complete(self) -> bool:
        return self._ctx.is_finished

    @property
    def is_suspended(self) -> bool:
        return self._suspended

    def execute(
        self, past_events: Iterable[ev.HistoryEvent], new_events: Iterable[ev.HistoryEvent]
    ) -> EpisodeResult:
        """Cold start: replay the stored ``past_events``, then run the episode's ``new_events``.

        Raises:
            OrchestrationStateError: this executor has already processed events.
        """
        if self._used:
            raise OrchestrationStateError(
                "execute() replays a stored history into a fresh executor; "
                "this one has processed events already, call resume(new_events)"
            )
        self._used = True
        past_events = list(past_events)
        self._ctx.record_patches(patches_recorded(past_events))  # the code asks before it reads them
        self._ctx.set_replaying(True)
        try:
            for event in past_events:
                self._apply(event)
        finally:
            self._ctx.set_replaying(False)
        return self.resume(new_events)

    def replay_rewound(self, past_events: Sequence[ev.HistoryEvent], forget: Set[int]) -> set[int]:
        """Cold start for a rewind: replay ``past_events`` without the positions in ``forget``.

        From the first forgotten event on, the code may take another path than history
        records, so replay is lenient there: a recorded action the code does not make again is
        forgotten too (with the responses to it), and episode ends are not checked. Actions the
        code makes that history does not confirm stay pending for the next ``resume``. Returns
        every forgotten position, ``forget`` included, for the runtime to blank out.

        Raises:
            OrchestrationStateError: this executor has already processed events.
        """
        if self._used:
            raise OrchestrationStateError("replay_rewound() needs a fresh executor")
        self._used = True
        self._ctx.record_patches(patches_recorded(past_events))
        forgotten = set(forget)
        forgotten_ids: set[int] = set()
        lenient = False
        self._ctx.set_replaying(True)
        try:
            for position, event in enumerate(past_events):
                if position in forget:
                    lenient = True
                    continue
                if lenient:
                    if isinstance(event, CONFIRMING_EVENTS):
                        if not self._ctx.try_confirm(event):  # type: ignore[arg-type]
                            forgotten.add(position)
                            forgotten_ids.add(event.event_id)
                        continue
                    if isinstance(event, ev.OrchestratorCompleted):
                        continue
                    answer = _answered_id(event)
                    if answer is not None and answer in forgotten_ids:
                        forgotten.add(position)
                        continue
                self._apply(event)
        finally:
            self._ctx.set_replaying(False)
        return forgotten

    def resume(self, new_events: Iterable[ev.HistoryEvent]) -> EpisodeResult:
        """Run one episode over the events that arrived since the previous one."""
        self._used = True
        for event in new_events:
            self._apply(event)
        return EpisodeResult(
            actions=self._ctx.drain_actions(),
            custom_status=self._ctx.custom_status,
            is_complete=self._ctx.is_finished,
            is_suspended=self._suspended,
            patches=self._ctx.drain_patches(),
            listening=self._ctx.listening(),
        )

    # --- dispatch ---

    def _apply(self, event: ev.HistoryEvent) -> None:
        if self._ctx.is_finished and not isinstance(event, _MATTER_AFTER_THE_END):
            return
        if self._suspended and isinstance(event, _HELD_WHILE_SUSPENDED):
            self._held.append(event)
            return
        handler = self._handlers.get(type(event))
        if handler is None:
            self._log.warning(
                "%s: ignoring unsupported history event %s", self.instance_id, type(event).__name__
            )
            return
        try:
            handler(event)
            self._advance()
        except NonDeterminismError as exc:
            self._stop_generator()
            self._ctx.fail(exc, discard_actions=True)
        except Exception as exc:  # user code or its payloads: the instance fails, the worker goes on
            self._stop_generator()
            self._ctx.fail(exc)

    def _advance(self) -> None:
        """Resume the generator for as long as the task it waits on is complete."""
        while self._generator is not None and not self._ctx.is_finished:
            awaited = self._awaiting
            if awaited is None or not awaited.is_complete:
                return
            if awaited.is_failed:
                self._step(functools.partial(self._generator.throw, awaited.get_exception()))
            else:
                self._step(functools.partial(self._generator.send, awaited.get_result()))
        self._stop_generator()

    def _step(self, resume: Callable[[], Any]) -> None:
        try:
            yielded = resume()
        except StopIteration as stop:
            self._stop_generator()
            self._ctx.finish(stop.value)
            return
        if not isinstance(yielded, Task):
            raise TypeError(
                f"orchestrator {self._ctx.name!r} yielded {yielded!r}; yield the tasks returned by "
                "ctx.call_activity, ctx.create_timer, ..., when_all or when_any"
            )
        if yielded._never_completes():
            what = "a cancelled timer"
            if isinstance(yielded, WhenAllTask | WhenAnyTask):
                what = f"{'when_all' if isinstance(yielded, WhenAllTask) else 'when_any'} that needs {what}"
            raise ValueError(
                f"orchestrator {self._ctx.name!r} yielded {what}, which never completes; "
                "yield it before cancelling it, or do not cancel it"
            )
        self._awaiting = yielded

    def _stop_generator(self) -> None:
        # Dropped, not closed: closing would run the user's finally blocks outside replay.
        self._generator = None
        self._awaiting = None

    # --- handlers ---

    def _apply_execution_started(self, event: ev.ExecutionStarted) -> None:
        if self._started:
            self._log.warning("%s: ignoring a second ExecutionStarted", self.instance_id)
            return
        self._started = True
        self._ctx.start(event)
        orchestrator_input = self._codec.decode(
            event.input, _input_type(self._orchestrator), what=f"input of orchestrator {event.name!r}"
        )
        output = self._orchestrator(self._ctx, orchestrator_input)
        if inspect.isgenerator(output):
            self._generator = output
            self._step(functools.partial(next, output))
        elif inspect.iscoroutine(output) or inspect.isasyncgen(output):
            if inspect.iscoroutine(output):
                output.close()  # no "never awaited" warning on top of the real error
            raise TypeError(
                f"orchestrator {event.name!r} is async; "
                "orchestrators are generator functions that yield tasks"
            )
        else:
            self._ctx.finish(output)

    def _apply_orchestrator_started(self, event: ev.OrchestratorStarted) -> None:
        self._ctx.set_time(event.timestamp)  # the only clock replay has

    def _apply_orchestrator_completed(self, event: ev.OrchestratorCompleted) -> None:
        if self._ctx.is_replaying:
            self._ctx.check_all_confirmed()

    def _apply_confirmation(
        self, event: ev.TaskScheduled | ev.TimerCreated | ev.SubOrchestrationInstanceCreated | ev.EventSent
    ) -> None:
        self._ctx.confirm(event)

    def _apply_task_completed(self, event: ev.TaskCompleted) -> None:
        if not self._ctx.complete_call(event.task_scheduled_id, CallKind.ACTIVITY, event.result):
            self._ignore(event, event.task_scheduled_id)

    def _apply_task_failed(self, event: ev.TaskFailed) -> None:
        if not self._ctx.fail_call(event.task_scheduled_id, CallKind.ACTIVITY, _failure_of(event)):
            self._ignore(event, event.task_scheduled_id)

    def _apply_sub_orchestration_completed(self, event: ev.SubOrchestrationInstanceCompleted) -> None:
        if not self._ctx.complete_call(event.task_scheduled_id, CallKind.SUB_ORCHESTRATION, event.result):
            self._ignore(event, event.task_scheduled_id)

    def _apply_sub_orchestration_failed(self, event: ev.SubOrchestrationInstanceFailed) -> None:
        if not self._ctx.fail_call(event.task_scheduled_id, CallKind.SUB_ORCHESTRATION, _failure_of(event)):
            self._ignore(event, event.task_scheduled_id)

    def _apply_timer_fired(self, event: ev.TimerFired) -> None:
        if not self._ctx.fire_timer(event.timer_id):
            self._ignore(event, event.timer_id)

    def _apply_event_raised(self, event: ev.EventRaised) -> None:
        self._ctx.raise_event(event.name, event.input)

    def _apply_execution_terminated(self, event: ev.ExecutionTerminated) -> None:
        self._stop_generator()
        self._ctx.terminate(event.input, recurse=bool(event.recurse))

    def _apply_execution_completed(self, event: ev.ExecutionCompleted | ev.ContinueAsNew) -> None:
        self._stop_generator()
        self._ctx.confirm_completion(event)

    def _apply_execution_suspended(self, event: ev.ExecutionSuspended) -> None:
        self._suspended = True

    def _apply_execution_resumed(self, event: ev.ExecutionResumed) -> None:
        if not self._suspended:
            return
        self._suspended = False
        held, self._held = self._held, []
        for waiting in held:
            self._apply(waiting)

    def _apply_nothing(self, event: ev.HistoryEvent) -> None:
        pass

    def _ignore(self, event: ev.HistoryEvent, task_id: int) -> None:
        # Duplicates (at-least-once delivery) and responses to unknown ids are harmless.
        if not self._ctx.is_replaying:
            self._log.warning(
                "%s: ignoring %s for unknown or already completed id %d",
                self.instance_id,
                type(event).__name__,
                task_id,
            )


def _answered_id(event: ev.HistoryEvent) -> int | None:
    if isinstance(event, ev.TimerFired):
        return event.timer_id
    if isinstance(
        event,
        (
            ev.TaskCompleted,
            ev.TaskFailed,
            ev.SubOrchestrationInstanceCompleted,
            ev.SubOrchestrationInstanceFailed,
        ),
    ):
        return event.task_scheduled_id
    return None


def _failure_of(event: ev.TaskFailed | ev.SubOrchestrationInstanceFailed) -> FailureDetails:
    if event.failure_details is not None:
        return event.failure_details
    # Older writers (and DTFx for a terminated sub-orchestration) give only reason and details.
    return FailureDetails(
        message=event.reason or "no failure details were recorded",
        error_type=UNKNOWN_ERROR_TYPE,
        stack_trace=event.details,
    )


def _input_type(orchestrator: Callable[..., Any]) -> Any:
    """The annotated type of the input parameter when it is a dataclass or pydantic model."""
    try:
        parameters = list(inspect.signature(orchestrator).parameters.values())
        hints = typing.get_type_hints(orchestrator)
    except (TypeError, ValueError, NameError):
        return None
    if len(parameters) < 2:
        return None
    hint = hints.get(parameters[1].name)
    return hint if is_structured_type(hint) else None
