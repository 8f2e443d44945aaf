"""Rewind: turn a failed instance's history back into one that is waiting, without I/O.

A rewound instance re-runs what failed and keeps every result that arrived. As DTFx's Azure
Storage provider does, rows are never deleted or renumbered: forgotten events become
``GenericEvent`` rows with ``Reason = "Rewound: <EventType>"`` at the same RowKey and EventId,
which replay passes over. What is forgotten:

* every failure of the generation (``TaskFailed``, ``SubOrchestrationInstanceFailed``) and the
  ``ExecutionCompleted(Failed)``, as the reference does;
* whatever the orchestrator recorded only because of a failure (a retry's timer and next
  attempt, a compensation): replayed without the failures, from the first of them on, the
  code is matched leniently against history, and a recorded action it no longer makes is
  forgotten along with the responses to it (``OrchestrationExecutor.replay_rewound``). Plain
  DTFx keeps such rows and then trips over them as non-determinism.

Calls that stay recorded but unanswered (the failed ones, and those whose results arrived
after the instance had failed and were dropped) are sent again: activities and timers by
``RewindPlan.messages``; sub-orchestrations by the runtime, which first looks at each child
(``RewindPlan.children``): rewind a failed one, report a completed one's result, leave a
running one alone, start a missing one again. Actions the code makes anew come out of the
rewind episode like any others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from durablehub.engine import history as ev
from durablehub.engine.episode import OutboundMessage
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.errors import OrchestrationStateError
from durablehub.models import OrchestrationStatus

__all__ = ["REWOUND_PREFIX", "RewindPlan", "UnansweredChild", "is_rewound", "rewind", "rewind_plan"]

REWOUND_PREFIX = "Rewound: "

_ANSWERS = (
    ev.TaskCompleted,
    ev.TaskFailed,
    ev.SubOrchestrationInstanceCompleted,
    ev.SubOrchestrationInstanceFailed,
)
_SCHEDULING = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnansweredChild:
    """A sub-orchestration the rewound parent still waits for."""

    task_id: int
    created: ev.SubOrchestrationInstanceCreated
    failed: bool
    """Its failure was forgotten: the child is to be rewound too."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RewindPlan:
    history: tuple[ev.HistoryEvent, ...]
    """The history with the forgotten events replaced: same length, same order."""
    replaced: dict[int, ev.HistoryEvent]
    """Position (the row's sequence number) → its ``GenericEvent`` replacement."""
    messages: tuple[OutboundMessage, ...]
    """Activities and timers to send again, addressed to this execution."""
    children: tuple[UnansweredChild, ...]


def is_rewound(event: ev.HistoryEvent) -> bool:
    return isinstance(event, ev.GenericEvent) and (event.reason or "").startswith(REWOUND_PREFIX)


def rewind(
    executor: OrchestrationExecutor, history: Sequence[ev.HistoryEvent], *, now: datetime
) -> RewindPlan:
    """Replay a failed generation's ``history`` into the fresh ``executor`` as rewound.

    Afterwards ``executor.resume([OrchestratorStarted, ExecutionRewound])`` runs the rewind
    episode; ``RewindPlan.history`` is what it continues from.

    Raises:
        OrchestrationStateError: the history does not end in a failure.
    """
    started = next((e for e in history if isinstance(e, ev.ExecutionStarted)), None)
    end = _failed_completion(history)
    if end is None or started is None:
        raise OrchestrationStateError("only a failed orchestration can be rewound")
    forget = {
        i for i, e in enumerate(history) if isinstance(e, (ev.TaskFailed, ev.SubOrchestrationInstanceFailed))
    }
    forget.add(end)
    failed_children = {
        e.task_scheduled_id for e in history if isinstance(e, ev.SubOrchestrationInstanceFailed)
    }
    forgotten = executor.replay_rewound(history, forget)
    return rewind_plan(history, forgotten, failed_children=failed_children, now=now)


def rewind_plan(
    history: Sequence[ev.HistoryEvent], forgotten: Iterable[int], *, failed_children: Set[int], now: datetime
) -> RewindPlan:
    """The plan that forgets the events at positions ``forgotten`` of ``history`` (whoever chose
    them: durablehub's replay, or a Durable Task SDK's rewind); ``failed_children`` are the task
    ids of sub-orchestrations whose failure is forgotten (to be rewound in turn)."""
    started = next(e for e in history if isinstance(e, ev.ExecutionStarted))
    replaced: dict[int, ev.HistoryEvent] = {
        i: ev.GenericEvent(
            event_id=history[i].event_id,
            timestamp=history[i].timestamp,
            reason=REWOUND_PREFIX + history[i].event_type.name,
        )
        for i in sorted(forgotten)
    }
    rewritten = tuple(replaced.get(i, event) for i, event in enumerate(history))

    scheduled: dict[int, ev.HistoryEvent] = {}
    answered: set[int] = set()
    for event in rewritten:
        if isinstance(event, _SCHEDULING):
            scheduled[event.event_id] = event
        elif isinstance(event, _ANSWERS):
            answered.add(event.task_scheduled_id)
        elif isinstance(event, ev.TimerFired):
            answered.add(event.timer_id)
    me = started.orchestration_instance
    messages: list[OutboundMessage] = []
    children: list[UnansweredChild] = []
    for task_id, event in sorted(scheduled.items()):
        if task_id in answered:
            continue
        if isinstance(event, ev.TaskScheduled):
            messages.append(
                OutboundMessage(
                    target_instance_id=me.instance_id,
                    target_execution_id=me.execution_id,
                    event=event,
                    to_work_items=True,
                )
            )
        elif isinstance(event, ev.TimerCreated):
            messages.append(
                OutboundMessage(
                    target_instance_id=me.instance_id,
                    target_execution_id=me.execution_id,
                    event=ev.TimerFired(timestamp=now, timer_id=task_id, fire_at=event.fire_at),
                    visible_at=event.fire_at,
                )
            )
        elif isinstance(event, ev.SubOrchestrationInstanceCreated):
            children.append(
                UnansweredChild(task_id=task_id, created=event, failed=task_id in failed_children)
            )
    return RewindPlan(
        history=rewritten, replaced=replaced, messages=tuple(messages), children=tuple(children)
    )


def _failed_completion(history: Sequence[ev.HistoryEvent]) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        event = history[i]
        if isinstance(event, ev.ExecutionCompleted):
            return i if event.orchestration_status is OrchestrationStatus.FAILED else None
    return None
