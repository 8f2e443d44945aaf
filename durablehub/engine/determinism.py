"""Matching replayed calls against the history events that recorded them.

Every scheduling call takes the next sequence id; the history event that confirms it
(``TaskScheduled``, ``TimerCreated``, ``SubOrchestrationInstanceCreated``, ``EventSent``)
carries that id as ``event_id``. On replay, each confirming event must meet an action of the
same kind, with the same name and target, that the code produced under that id; at the end
of a replayed episode (``OrchestratorCompleted``) no action may be left unconfirmed. Any
mismatch is a ``NonDeterminismError`` whose message names the history side and the code side.
"""

from __future__ import annotations

from collections.abc import Iterable

from durablehub.engine import history as ev
from durablehub.engine.actions import (
    Action,
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durablehub.errors import NonDeterminismError

__all__ = [
    "CONFIRMING_EVENTS",
    "check_confirmation",
    "describe_action",
    "describe_event",
    "matches",
    "unconfirmed_error",
]

ConfirmingEvent = ev.TaskScheduled | ev.TimerCreated | ev.SubOrchestrationInstanceCreated | ev.EventSent
CONFIRMING_EVENTS: tuple[type[ev.HistoryEvent], ...] = (
    ev.TaskScheduled,
    ev.TimerCreated,
    ev.SubOrchestrationInstanceCreated,
    ev.EventSent,
)

_HINT = "; the orchestrator is not deterministic, or its code changed while this instance was running"


def check_confirmation(event: ConfirmingEvent, action: Action | None, *, calls_made: int) -> None:
    """Check that ``action`` (the code's action with id ``event.event_id``) is what ``event`` records.

    Raises:
        NonDeterminismError: no such action, or one of another kind, name or target.
    """
    if action is None:
        raise NonDeterminismError(
            f"history has {describe_event(event)} but the orchestrator made no call with id "
            f"{event.event_id} (it has made {calls_made} calls so far){_HINT}"
        )
    if matches(event, action):
        return
    raise NonDeterminismError(
        f"history has {describe_event(event)} but the orchestrator called {describe_action(action)}{_HINT}"
    )


def unconfirmed_error(actions: Iterable[Action]) -> NonDeterminismError:
    """The error for actions the code produced in a replayed episode that history does not record."""
    listed = ", ".join(f"{describe_action(a)} (id={a.id})" for a in actions)
    return NonDeterminismError(
        f"the orchestrator called {listed} but history has no matching event in that episode{_HINT}"
    )


def describe_event(event: ev.HistoryEvent) -> str:
    """``TaskScheduled(id=1, name='A')``: a confirming event as messages show it."""
    match event:
        case ev.TaskScheduled():
            return f"TaskScheduled(id={event.event_id}, name={event.name!r})"
        case ev.TimerCreated():
            return f"TimerCreated(id={event.event_id}, fire_at={event.fire_at.isoformat()})"
        case ev.SubOrchestrationInstanceCreated():
            return (
                f"SubOrchestrationInstanceCreated(id={event.event_id}, name={event.name!r}, "
                f"instance_id={event.instance_id!r})"
            )
        case ev.EventSent():
            return f"EventSent(id={event.event_id}, instance_id={event.instance_id!r}, name={event.name!r})"
    return f"{type(event).__name__}(id={event.event_id})"


def describe_action(action: Action) -> str:
    """``call_activity('B')``: an action as the call that produced it."""
    match action:
        case ScheduleTask():
            return f"call_activity({action.name!r})"
        case CreateTimer():
            return f"create_timer({action.fire_at.isoformat()})"
        case CreateSubOrchestration():
            return f"call_sub_orchestrator({action.name!r}, instance_id={action.instance_id!r})"
        case SendEvent():
            return f"send_event({action.instance_id!r}, {action.name!r})"
        case CompleteOrchestration():
            return f"complete the orchestration ({action.status.name})"
    raise TypeError(f"not an action: {action!r}")


def matches(event: ConfirmingEvent, action: Action) -> bool:
    """The history event records this action: same kind and name (and target)."""
    match event, action:
        case ev.TaskScheduled(), ScheduleTask():
            return event.name == action.name
        case ev.TimerCreated(), CreateTimer():
            return True  # DTFx and durabletask do not compare fire times either
        case ev.SubOrchestrationInstanceCreated(), CreateSubOrchestration():
            return event.name == action.name and event.instance_id == action.instance_id
        case ev.EventSent(), SendEvent():
            return event.instance_id == action.instance_id and event.name.casefold() == action.name.casefold()
    return False
