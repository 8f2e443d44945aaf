"""History event builders for tests, and ``replay`` to run an orchestrator over them.

::

    from durablehub.testing import history as h

    def chain(ctx, _):
        first = yield ctx.call_activity("A")
        return (yield ctx.call_activity("B", input=first))

    result = h.replay(chain, past=[h.started("Chain"), h.task_scheduled(0, "A")],
                      new=[h.task_completed(0, 1)])
    assert result.actions == (ScheduleTask(id=1, name="B", input="1"),)

Payload arguments (``input``, ``result``, ``data``) are Python values, encoded as JSON the
way the engine stores them. Every event is stamped ``T0`` unless ``at=`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, Codec
from durablehub.engine.replay import EpisodeResult, OrchestrationExecutor
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.task import Orchestrator

__all__ = [
    "DEFAULT_EXECUTION_ID",
    "DEFAULT_INSTANCE_ID",
    "T0",
    "event_raised",
    "event_sent",
    "execution_completed",
    "orchestrator_completed",
    "orchestrator_started",
    "replay",
    "resumed",
    "started",
    "sub_orch_completed",
    "sub_orch_created",
    "sub_orch_failed",
    "suspended",
    "task_completed",
    "task_failed",
    "task_scheduled",
    "terminated",
    "timer_created",
    "timer_fired",
]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_INSTANCE_ID = "test-instance"
DEFAULT_EXECUTION_ID = "0" * 32


def _json(value: Any) -> str | None:
    return JSON_CODEC.encode(value)


def started(
    name: str,
    input: Any = None,
    *,
    instance_id: str = DEFAULT_INSTANCE_ID,
    execution_id: str = DEFAULT_EXECUTION_ID,
    version: str | None = None,
    parent_instance_id: str | None = None,
    parent_task_id: int = 0,
    generation: int | None = None,
    at: datetime = T0,
) -> ev.ExecutionStarted:
    """``ExecutionStarted`` of orchestrator ``name``; with ``parent_instance_id``, as a sub-orchestration."""
    parent = None
    if parent_instance_id is not None:
        parent = ev.ParentInstance(
            name="Parent",
            task_schedule_id=parent_task_id,
            orchestration_instance=ev.OrchestrationInstance(
                instance_id=parent_instance_id, execution_id="parent-execution"
            ),
        )
    return ev.ExecutionStarted(
        timestamp=at,
        name=name,
        version=version,
        input=_json(input),
        parent_instance=parent,
        generation=generation,
        orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
    )


def orchestrator_started(at: datetime = T0) -> ev.OrchestratorStarted:
    return ev.OrchestratorStarted(timestamp=at)


def orchestrator_completed(at: datetime = T0) -> ev.OrchestratorCompleted:
    return ev.OrchestratorCompleted(timestamp=at)


def task_scheduled(id: int, name: str, input: Any = None, *, at: datetime = T0) -> ev.TaskScheduled:
    return ev.TaskScheduled(event_id=id, timestamp=at, name=name, input=_json(input))


def task_completed(id: int, result: Any = None, *, at: datetime = T0) -> ev.TaskCompleted:
    return ev.TaskCompleted(timestamp=at, task_scheduled_id=id, result=_json(result))


def task_failed(
    id: int, message: str = "boom", *, error_type: str = "builtins.ValueError", at: datetime = T0
) -> ev.TaskFailed:
    details = FailureDetails(message=message, error_type=error_type)
    return ev.TaskFailed(timestamp=at, task_scheduled_id=id, reason=message, failure_details=details)


def timer_created(id: int, fire_at: datetime, *, at: datetime = T0) -> ev.TimerCreated:
    return ev.TimerCreated(event_id=id, timestamp=at, fire_at=fire_at)


def timer_fired(id: int, fire_at: datetime, *, at: datetime | None = None) -> ev.TimerFired:
    """``TimerFired``, stamped at its fire time unless ``at`` is given."""
    return ev.TimerFired(timestamp=at or fire_at, timer_id=id, fire_at=fire_at)


def event_raised(name: str, data: Any = None, *, at: datetime = T0) -> ev.EventRaised:
    return ev.EventRaised(timestamp=at, name=name, input=_json(data))


def event_sent(id: int, instance_id: str, name: str, data: Any = None, *, at: datetime = T0) -> ev.EventSent:
    return ev.EventSent(event_id=id, timestamp=at, instance_id=instance_id, name=name, input=_json(data))


def sub_orch_created(
    id: int,
    name: str,
    instance_id: str | None = None,
    input: Any = None,
    *,
    parent_instance_id: str = DEFAULT_INSTANCE_ID,
    at: datetime = T0,
) -> ev.SubOrchestrationInstanceCreated:
    """``SubOrchestrationInstanceCreated``; the child id defaults to the engine's ``"{parent}:{id:04x}"``."""
    child = instance_id if instance_id is not None else f"{parent_instance_id}:{id:04x}"
    return ev.SubOrchestrationInstanceCreated(
        event_id=id, timestamp=at, name=name, instance_id=child, input=_json(input)
    )


def sub_orch_completed(
    id: int, result: Any = None, *, at: datetime = T0
) -> ev.SubOrchestrationInstanceCompleted:
    return ev.SubOrchestrationInstanceCompleted(timestamp=at, task_scheduled_id=id, result=_json(result))


def sub_orch_failed(
    id: int, message: str = "boom", *, error_type: str = "builtins.ValueError", at: datetime = T0
) -> ev.SubOrchestrationInstanceFailed:
    details = FailureDetails(message=message, error_type=error_type)
    return ev.SubOrchestrationInstanceFailed(
        timestamp=at, task_scheduled_id=id, reason=message, failure_details=details
    )


def suspended(reason: str | None = None, *, at: datetime = T0) -> ev.ExecutionSuspended:
    return ev.ExecutionSuspended(timestamp=at, reason=reason)


def resumed(reason: str | None = None, *, at: datetime = T0) -> ev.ExecutionResumed:
    return ev.ExecutionResumed(timestamp=at, reason=reason)


def terminated(reason: Any = None, *, at: datetime = T0) -> ev.ExecutionTerminated:
    return ev.ExecutionTerminated(timestamp=at, input=_json(reason))


def execution_completed(
    id: int,
    result: Any = None,
    *,
    status: OrchestrationStatus = OrchestrationStatus.COMPLETED,
    at: datetime = T0,
) -> ev.ExecutionCompleted:
    return ev.ExecutionCompleted(event_id=id, timestamp=at, orchestration_status=status, result=_json(result))


def replay(
    orchestrator: Orchestrator,
    past: Iterable[ev.HistoryEvent] = (),
    new: Iterable[ev.HistoryEvent] = (),
    *,
    codec: Codec = JSON_CODEC,
) -> EpisodeResult:
    """Run ``orchestrator`` in a fresh executor: replay ``past``, then the episode ``new``."""
    return OrchestrationExecutor(orchestrator, codec=codec).execute(past, new)
