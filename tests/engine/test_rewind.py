"""Rewinding a failed history: what is forgotten, what is sent again, and how replay resumes."""

from __future__ import annotations

import pytest

from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.engine.rewind import is_rewound, rewind
from durablehub.errors import OrchestrationStateError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.task import OrchestrationContext, RetryPolicy, TaskFailedError, when_all
from durablehub.testing import history as h
from durablehub.testing.history import T0

from .simulator import Driver

Status = OrchestrationStatus


def failed(id: int, message: str = "boom") -> ev.TaskFailed:
    return h.task_failed(id, message)


def resume_after_rewind(orchestrator, history: list[ev.HistoryEvent]):
    """What the runtime does: rewrite, replay cold, run the ExecutionRewound episode."""
    executor = OrchestrationExecutor(orchestrator)
    plan = rewind(executor, history, now=T0)
    result = executor.resume([ev.OrchestratorStarted(timestamp=T0), ev.ExecutionRewound(reason="retry")])
    # What the runtime stores replays to the same state, cold.
    cold = OrchestrationExecutor(orchestrator).execute(
        list(plan.history), [ev.OrchestratorStarted(timestamp=T0), ev.ExecutionRewound(reason="retry")]
    )
    assert cold.actions == result.actions and cold.is_complete == result.is_complete
    return plan, executor, result


def chain(ctx: OrchestrationContext, _: None):
    a = yield ctx.call_activity("A")
    b = yield ctx.call_activity("B", input=a)
    return [a, b]


def test_a_failed_activity_is_sent_again_and_earlier_results_are_kept() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    driver.episode(h.task_completed(0, "a"))
    assert driver.episode(failed(1)).is_complete

    plan, executor, result = resume_after_rewind(chain, driver.history)
    assert len(plan.history) == len(driver.history)  # rows are replaced, never removed
    rewound = [e.reason for e in plan.history if is_rewound(e)]
    assert rewound == ["Rewound: TaskFailed", "Rewound: ExecutionCompleted"]
    assert [(m.event.event_id, m.to_work_items) for m in plan.messages] == [(1, True)]
    assert isinstance(plan.messages[0].event, ev.TaskScheduled) and plan.messages[0].event.name == "B"
    assert result.actions == () and not result.is_complete

    done = executor.resume([ev.OrchestratorStarted(timestamp=T0), h.task_completed(1, "b")])
    assert done.actions == (CompleteOrchestration(id=2, status=Status.COMPLETED, result='["a","b"]'),)


def fan_out(ctx: OrchestrationContext, n: int):
    results = yield when_all([ctx.call_activity("Work", input=i) for i in range(n)])
    return sum(results)


def test_a_fan_out_resends_only_the_failed_calls() -> None:
    driver = Driver(fan_out)
    driver.episode(h.started("FanOut", 4))
    driver.episode(h.task_completed(0, 10), failed(1))
    driver.episode(failed(3, "also"))
    assert driver.episode(h.task_completed(2, 30)).is_complete  # when_all fails once all are in

    plan, executor, _ = resume_after_rewind(fan_out, driver.history)
    assert sorted(m.event.event_id for m in plan.messages) == [1, 3]
    done = executor.resume(
        [ev.OrchestratorStarted(timestamp=T0), h.task_completed(3, 40), h.task_completed(1, 20)]
    )
    assert done.actions == (CompleteOrchestration(id=4, status=Status.COMPLETED, result="100"),)


def test_results_dropped_after_the_failure_are_asked_for_again() -> None:
    def first_failure_wins(ctx: OrchestrationContext, _: None):
        a, b = ctx.call_activity("A"), ctx.call_activity("B")
        yield ctx.call_activity("Gate")
        return [(yield a), (yield b)]

    driver = Driver(first_failure_wins)
    driver.episode(h.started("F"))
    assert driver.episode(failed(2)).is_complete  # A and B were still running: their results are lost

    plan, _, _ = resume_after_rewind(first_failure_wins, driver.history)
    assert [m.event.event_id for m in plan.messages] == [0, 1, 2]


def undo_and_fail(ctx: OrchestrationContext, _: None):
    try:
        yield ctx.call_activity("Charge")
    except TaskFailedError:
        ctx.call_activity("Undo")  # fire and forget, then give up in the same episode
        raise


def test_actions_of_the_failing_episode_are_forgotten_not_checked() -> None:
    driver = Driver(undo_and_fail)
    driver.episode(h.started("Undo"))
    assert driver.episode(failed(0)).is_complete
    assert any(isinstance(e, ev.TaskScheduled) and e.name == "Undo" for e in driver.history)

    plan, executor, result = resume_after_rewind(undo_and_fail, driver.history)
    assert [m.event.name for m in plan.messages] == ["Charge"]  # type: ignore[attr-defined]
    assert result.actions == () and not result.is_complete  # no NonDeterminismError for "Undo"
    done = executor.resume([ev.OrchestratorStarted(timestamp=T0), h.task_completed(0)])
    assert done.actions == (CompleteOrchestration(id=1, status=Status.COMPLETED),)


def test_actions_the_orchestrator_still_makes_keep_their_record() -> None:
    def two_then_check(ctx: OrchestrationContext, _: None):
        a = ctx.call_activity("A")
        b = ctx.call_activity("B")
        first = yield a
        ctx.call_activity("Audit", input=first)  # made in the failing episode, before b fails
        yield b

    driver = Driver(two_then_check)
    driver.episode(h.started("Two"))
    assert driver.episode(h.task_completed(0, "x"), failed(1)).is_complete

    plan, _, result = resume_after_rewind(two_then_check, driver.history)
    assert not any(is_rewound(e) and e.event_id == 2 for e in plan.history)
    assert [m.event.event_id for m in plan.messages] == [1, 2]  # B failed; Audit's result was dropped
    assert result.actions == ()


def test_a_retried_call_starts_its_retries_afresh() -> None:
    from datetime import timedelta

    policy = RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=2)

    def retrying(ctx: OrchestrationContext, _: None):
        return (yield ctx.call_activity("Flaky", retry_policy=policy))

    driver = Driver(retrying)
    driver.episode(h.started("Retrying"))
    driver.episode(failed(0, "first"))
    driver.episode(h.timer_fired(1, T0 + timedelta(seconds=5)))
    assert driver.episode(failed(2, "second")).is_complete

    plan, executor, result = resume_after_rewind(retrying, driver.history)
    # Both failures, the back-off timer and the second attempt are forgotten; attempt 1 runs again.
    rewound = [(e.event_id, e.reason) for e in plan.history if is_rewound(e)]
    assert rewound == [
        (-1, "Rewound: TaskFailed"),
        (1, "Rewound: TimerCreated"),
        (-1, "Rewound: TimerFired"),
        (2, "Rewound: TaskScheduled"),
        (-1, "Rewound: TaskFailed"),
        (3, "Rewound: ExecutionCompleted"),
    ]
    assert [m.event.event_id for m in plan.messages] == [0]
    assert result.actions == ()
    done = executor.resume([ev.OrchestratorStarted(timestamp=T0), h.task_completed(0, "ok")])
    assert done.actions[-1] == CompleteOrchestration(id=1, status=Status.COMPLETED, result='"ok"')


def test_failed_sub_orchestrations_are_listed_for_rewinding() -> None:
    def parent(ctx: OrchestrationContext, _: None):
        return (yield ctx.call_sub_orchestrator("Child", instance_id="kid"))

    driver = Driver(parent)
    driver.episode(h.started("Parent"))
    assert driver.episode(h.sub_orch_failed(0)).is_complete

    plan, executor, _ = resume_after_rewind(parent, driver.history)
    assert plan.messages == ()
    assert [(c.task_id, c.created.instance_id, c.failed) for c in plan.children] == [(0, "kid", True)]
    done = executor.resume([ev.OrchestratorStarted(timestamp=T0), h.sub_orch_completed(0, 7)])
    assert done.actions[-1] == CompleteOrchestration(id=1, status=Status.COMPLETED, result="7")


def test_unanswered_timers_are_fired_again_at_their_time() -> None:
    from datetime import timedelta

    def timer_and_call(ctx: OrchestrationContext, _: None):
        t = ctx.create_timer(timedelta(hours=1))
        yield ctx.call_activity("A")
        yield t

    driver = Driver(timer_and_call)
    driver.episode(h.started("T"))
    assert driver.episode(failed(1)).is_complete
    plan, _, _ = resume_after_rewind(timer_and_call, driver.history)
    timer = next(m for m in plan.messages if isinstance(m.event, ev.TimerFired))
    assert timer.event.timer_id == 0 and timer.visible_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.TERMINATED])
def test_only_a_failed_history_can_be_rewound(status: OrchestrationStatus) -> None:
    history = [h.orchestrator_started(), h.started("X"), h.execution_completed(0, status=status)]
    with pytest.raises(OrchestrationStateError, match="only a failed orchestration"):
        rewind(OrchestrationExecutor(chain), history, now=T0)
    with pytest.raises(OrchestrationStateError):
        rewind(OrchestrationExecutor(chain), [h.orchestrator_started(), h.started("X")], now=T0)


def test_a_code_bug_fails_again_after_the_rewind() -> None:
    def buggy(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A")
        raise RuntimeError("still broken")

    driver = Driver(buggy)
    driver.episode(h.started("Buggy"))
    assert driver.episode(h.task_completed(0)).is_complete
    _, _, result = resume_after_rewind(buggy, driver.history)
    completion = result.completion
    assert completion is not None and completion.status is Status.FAILED
    assert isinstance(completion.failure_details, FailureDetails)
    assert completion.failure_details.message == "still broken"
