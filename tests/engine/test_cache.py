"""A cached executor fed only new events behaves exactly like a cold replay, at O(N) cost."""

from __future__ import annotations

from datetime import timedelta

from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration, ScheduleTask
from durablehub.engine.episode import plan_episode
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.models import OrchestrationStatus
from durablehub.task import OrchestrationContext, RetryPolicy, TaskFailedError, when_all, when_any
from durablehub.testing import history as h
from durablehub.testing.history import T0


def busy(ctx: OrchestrationContext, _: None):
    """A bit of everything: fan-out, a retried call, a timer raced against an event, uuids, status."""
    ctx.set_custom_status({"ids": [ctx.new_uuid()]})
    squares = yield when_all([ctx.call_activity("Square", input=i) for i in range(3)])
    try:
        flaky = yield ctx.call_activity(
            "Flaky",
            retry_policy=RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2),
        )
    except TaskFailedError:
        flaky = "failed"
    winner = yield when_any([ctx.wait_for_external_event("Go"), ctx.create_timer(timedelta(days=8))])
    ctx.set_custom_status({"winner": winner.get_result()})
    return [squares, flaky, ctx.new_uuid()]


def episodes() -> list[list[ev.HistoryEvent]]:
    """The episodes' incoming events, one list each, as a runtime would receive them."""
    return [
        [h.started("Busy")],
        [h.task_completed(1, 1), h.task_completed(0, 0)],
        [h.task_completed(2, 4)],
        [h.task_failed(3)],
        [h.timer_fired(4, T0 + timedelta(seconds=1))],
        [h.task_failed(5)],
        [h.timer_fired(6, T0 + timedelta(days=3))],
        [h.event_raised("Go", "now")],
    ]


def test_resume_gives_the_same_results_as_a_cold_execute_for_every_episode() -> None:
    warm = OrchestrationExecutor(busy)
    history: list[ev.HistoryEvent] = []
    started = episodes()[0][0]
    assert isinstance(started, ev.ExecutionStarted)
    for n, incoming in enumerate(episodes()):
        new_events = [h.orchestrator_started(T0 + timedelta(minutes=n)), *incoming]
        warm_result = warm.resume(new_events)
        cold_result = OrchestrationExecutor(busy).execute(history, new_events)
        assert warm_result == cold_result, f"episode {n}"
        history += [*new_events, *plan_episode(warm_result, started=started, now=T0).history]
    assert warm_result.completion is not None
    assert warm_result.completion.status is OrchestrationStatus.COMPLETED
    assert warm_result.custom_status == '{"winner":"now"}'


def test_a_thousand_step_chain_costs_a_thousand_generator_steps() -> None:
    steps = 0

    def chain(ctx: OrchestrationContext, n: int):
        nonlocal steps
        total = 0
        for i in range(n):
            total += yield ctx.call_activity("Inc", input=i)
            steps += 1
        return total

    n = 1000
    executor = OrchestrationExecutor(chain)
    assert executor.resume([h.orchestrator_started(), h.started("Chain", n)]).actions == (
        ScheduleTask(id=0, name="Inc", input="0"),
    )
    history: list[ev.HistoryEvent] = [
        h.orchestrator_started(),
        h.started("Chain", n),
        h.task_scheduled(0, "Inc"),
    ]
    for i in range(n):
        result = executor.resume([h.orchestrator_started(), h.task_completed(i, 1)])
        history += [h.orchestrator_started(), h.task_completed(i, 1)]
        if i < n - 1:
            assert result.actions == (ScheduleTask(id=i + 1, name="Inc", input=str(i + 1)),)
            history.append(h.task_scheduled(i + 1, "Inc"))
    assert result.actions == (
        CompleteOrchestration(id=n, status=OrchestrationStatus.COMPLETED, result=str(n)),
    )
    # One generator step per event: O(N). Replaying the whole history each episode would take N(N+1)/2.
    assert steps == n

    steps = 0
    cold = OrchestrationExecutor(chain).execute(history[:-2], history[-2:])
    assert cold == result
    assert steps == n  # a cold start replays everything once
