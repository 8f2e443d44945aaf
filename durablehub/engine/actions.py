"""Orchestrator actions: what one episode of an orchestrator asks the runtime to do.

One frozen dataclass per action kind. ``id`` is the sequence number the orchestrator handed
out when the code made the call; it becomes the ``EventId`` of the history event that records
the action (``TaskScheduled``, ``TimerCreated``, ...), which is how replay matches them
(``durablehub.engine.determinism``). Payloads are JSON text (``durablehub.engine.codec``),
times are timezone-aware UTC like every history event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durablehub.engine.history import EventRaised
from durablehub.models import FailureDetails, OrchestrationStatus

__all__ = [
    "Action",
    "CompleteOrchestration",
    "CreateSubOrchestration",
    "CreateTimer",
    "ScheduleTask",
    "SendEvent",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTask:
    """Run activity ``name`` with ``input``; recorded as ``TaskScheduled(event_id=id)``."""

    id: int
    name: str
    input: str | None = None
    version: str | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTimer:
    """Wake the orchestration at ``fire_at``; recorded as ``TimerCreated(event_id=id)``."""

    id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSubOrchestration:
    """Start orchestration ``name`` as instance ``instance_id``, a child of this one."""

    id: int
    name: str
    instance_id: str
    input: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendEvent:
    """Raise event ``name`` on instance ``instance_id``; recorded as ``EventSent(event_id=id)``."""

    id: int
    instance_id: str
    name: str
    data: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteOrchestration:
    """The orchestration ended in this episode.

    ``status`` is COMPLETED (``result`` is the output), FAILED (``failure_details``),
    TERMINATED (``result`` is the termination reason; ``terminate_children`` the running
    sub-orchestrations a recursive termination reaches) or CONTINUED_AS_NEW (``new_input`` is
    the next generation's input, ``carryover_events`` the external events it inherits).
    """

    id: int
    status: OrchestrationStatus
    result: str | None = None
    failure_details: FailureDetails | None = None
    new_input: str | None = None
    new_version: str | None = None
    carryover_events: tuple[EventRaised, ...] = ()
    terminate_children: tuple[str, ...] = ()
    new_trace: bool = False
    """CONTINUED_AS_NEW only: the next generation starts a trace of its own (DTFx's
    ``ContinueAsNewTraceBehavior.StartNewTrace``)."""


Action = ScheduleTask | CreateTimer | CreateSubOrchestration | SendEvent | CompleteOrchestration
