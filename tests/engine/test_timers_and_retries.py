"""Durable timers (long ones chained below the 7-day queue limit) and retry policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration, CreateSubOrchestration, CreateTimer, ScheduleTask
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.task import OrchestrationContext, RetryPolicy, TaskFailedError, when_all, when_any
from durablehub.testing import history as h
from durablehub.testing.history import T0

from .simulator import Driver

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def completed(id: int, result: str | None) -> CompleteOrchestration:
    return CompleteOrchestration(id=id, status=OrchestrationStatus.COMPLETED, result=result)


# --- timers ---


def sleeper(ctx: OrchestrationContext, days: float):
    yield ctx.create_timer(timedelta(days=days))
    return "awake"


def test_short_timer_is_one_timer() -> None:
    driver = Driver(sleeper)
    assert driver.episode(h.started("Sleep", 6)).actions == (CreateTimer(id=0, fire_at=T0 + 6 * DAY),)
    done = driver.episode(h.timer_fired(0, T0 + 6 * DAY), at=T0 + 6 * DAY)
    assert done.actions == (completed(1, '"awake"'),)


def test_ten_day_timer_is_chained_in_three_day_steps_each_with_its_own_id() -> None:
    driver = Driver(sleeper)
    assert driver.episode(h.started("Sleep", 10)).actions == (CreateTimer(id=0, fire_at=T0 + 3 * DAY),)
    steps = [(0, 3, 1, 6), (1, 6, 2, 9), (2, 9, 3, 10)]
    for fired_id, fired_day, next_id, next_day in steps:
        result = driver.episode(h.timer_fired(fired_id, T0 + fired_day * DAY), at=T0 + fired_day * DAY)
        assert result.actions == (CreateTimer(id=next_id, fire_at=T0 + next_day * DAY),)
        assert not result.is_complete
    done = driver.episode(h.timer_fired(3, T0 + 10 * DAY), at=T0 + 10 * DAY)
    assert done.actions == (completed(4, '"awake"'),)


def test_a_timer_just_over_six_days_is_chained() -> None:
    driver = Driver(sleeper)
    total = 6 + 1 / 86400  # six days and a second
    assert driver.episode(h.started("Sleep", total)).actions == (CreateTimer(id=0, fire_at=T0 + 3 * DAY),)
    second = driver.episode(h.timer_fired(0, T0 + 3 * DAY), at=T0 + 3 * DAY)
    assert second.actions == (CreateTimer(id=1, fire_at=T0 + 6 * DAY),)
    third = driver.episode(h.timer_fired(1, T0 + 6 * DAY), at=T0 + 6 * DAY)
    assert third.actions == (CreateTimer(id=2, fire_at=T0 + 6 * DAY + SECOND),)


def test_later_steps_of_a_long_timer_take_the_next_free_id() -> None:
    def busy(ctx: OrchestrationContext, _: None):
        nap = ctx.create_timer(timedelta(days=7))
        yield ctx.call_activity("A")
        ctx.call_activity("B")
        yield nap
        return "done"

    driver = Driver(busy)
    first = driver.episode(h.started("Busy"))
    assert first.actions == (CreateTimer(id=0, fire_at=T0 + 3 * DAY), ScheduleTask(id=1, name="A"))
    assert driver.episode(h.task_completed(1), at=T0 + SECOND).actions == (ScheduleTask(id=2, name="B"),)
    step = driver.episode(h.timer_fired(0, T0 + 3 * DAY), at=T0 + 3 * DAY)
    assert step.actions == (CreateTimer(id=3, fire_at=T0 + 6 * DAY),)
    step = driver.episode(h.timer_fired(3, T0 + 6 * DAY), at=T0 + 6 * DAY)
    assert step.actions == (CreateTimer(id=4, fire_at=T0 + 7 * DAY),)
    assert driver.episode(h.timer_fired(4, T0 + 7 * DAY), at=T0 + 7 * DAY).actions == (
        completed(5, '"done"'),
    )


def test_an_intermediate_step_does_not_complete_the_users_timer() -> None:
    def race(ctx: OrchestrationContext, _: None):
        winner = yield when_any([ctx.create_timer(timedelta(days=10)), ctx.wait_for_external_event("Go")])
        return "timer" if winner.get_result() is None else winner.get_result()

    driver = Driver(race)
    driver.episode(h.started("Race"))
    assert driver.episode(h.timer_fired(0, T0 + 3 * DAY), at=T0 + 3 * DAY).actions == (
        CreateTimer(id=1, fire_at=T0 + 6 * DAY),
    )
    done = driver.episode(h.event_raised("Go", "event"), at=T0 + 4 * DAY)
    assert done.actions == (completed(2, '"event"'),)


@pytest.mark.parametrize(
    "fire_at",
    [
        datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),  # aware: converted to UTC
        datetime(2024, 1, 1, 0, 0),  # naive: taken as UTC
        timedelta(0),  # relative to current_utc_datetime
    ],
    ids=["aware", "naive", "timedelta"],
)
def test_timer_times_are_normalized_to_utc(fire_at: datetime | timedelta) -> None:
    seen: list[datetime] = []

    def orch(ctx: OrchestrationContext, _: None):
        timer = ctx.create_timer(fire_at)
        seen.append(timer.fire_at)
        yield timer

    result = h.replay(orch, new=[h.started("Tz")])
    assert result.actions == (CreateTimer(id=0, fire_at=datetime(2024, 1, 1, tzinfo=UTC)),)
    assert seen == [datetime(2024, 1, 1)]


def test_create_timer_refuses_other_types() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.create_timer(5)  # type: ignore[arg-type]

    completion = h.replay(orch, new=[h.started("Bad")]).completion
    assert completion is not None and completion.failure_details is not None
    assert completion.failure_details.error_type == "builtins.TypeError"


# --- cancelled timers (Durable Functions' timeout pattern) ---


def approval(ctx: OrchestrationContext, _: None):
    timeout = ctx.create_timer(timedelta(hours=1))
    approved = ctx.wait_for_external_event("Approval")
    winner = yield when_any([approved, timeout])
    if not timeout.is_completed:  # every Durable Functions sample of a timeout
        timeout.cancel()
    return "approved" if winner is approved else "timed out"


def test_the_durable_functions_timeout_sample_completes_without_waiting_for_its_timer() -> None:
    driver = Driver(approval)
    assert driver.episode(h.started("Approval")).actions == (CreateTimer(id=0, fire_at=T0 + HOUR),)
    done = driver.episode(h.event_raised("Approval", True), at=T0 + SECOND)
    assert done.actions == (completed(1, '"approved"'),) and done.is_complete
    # The timer still fires later; the finished instance ignores it.
    late = driver.episode(h.timer_fired(0, T0 + HOUR), at=T0 + HOUR)
    assert late.actions == () and late.is_complete


def test_the_timeout_sample_times_out_when_its_timer_fires_first() -> None:
    driver = Driver(approval)
    driver.episode(h.started("Approval"))
    done = driver.episode(h.timer_fired(0, T0 + HOUR), at=T0 + HOUR)
    assert done.actions == (completed(1, '"timed out"'),)


def test_a_cancelled_timer_never_completes_and_its_firing_is_ignored() -> None:
    seen: list[tuple[bool, bool]] = []

    def orch(ctx: OrchestrationContext, _: None):
        timer = ctx.create_timer(timedelta(hours=1))
        yield ctx.call_activity("A")
        cancelled = timer.cancel()
        seen.append((cancelled, timer.is_cancelled))
        yield ctx.wait_for_external_event("Done")
        seen.append((timer.is_complete, timer.is_cancelled))
        return "done"

    driver = Driver(orch)
    assert driver.episode(h.started("Cancel")).actions == (
        CreateTimer(id=0, fire_at=T0 + HOUR),
        ScheduleTask(id=1, name="A"),
    )
    assert driver.episode(h.task_completed(1), at=T0 + SECOND).actions == ()
    fired = driver.episode(h.timer_fired(0, T0 + HOUR), at=T0 + HOUR)
    assert fired.actions == () and not fired.is_complete
    done = driver.episode(h.event_raised("Done"), at=T0 + 2 * HOUR)
    assert done.actions == (completed(2, '"done"'),)
    assert seen[-1] == (False, True)  # still not complete after its TimerFired
    assert (True, True) in seen


def test_a_cancelled_long_timer_chains_no_further_step() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        nap = ctx.create_timer(timedelta(days=10))
        yield ctx.call_activity("A")
        nap.cancel()
        yield ctx.wait_for_external_event("Done")
        return "done"

    driver = Driver(orch)
    driver.episode(h.started("LongCancel"))
    driver.episode(h.task_completed(1), at=T0 + SECOND)
    step = driver.episode(h.timer_fired(0, T0 + 3 * DAY), at=T0 + 3 * DAY)
    assert step.actions == ()  # no CreateTimer for days 3 to 6
    assert driver.episode(h.event_raised("Done"), at=T0 + 4 * DAY).actions == (completed(2, '"done"'),)


def test_cancelling_a_fired_timer_is_a_no_op_that_says_so() -> None:
    seen: list[tuple[bool, bool]] = []

    def orch(ctx: OrchestrationContext, _: None):
        timer = ctx.create_timer(timedelta(hours=1))
        yield timer
        seen.append((timer.cancel(), timer.is_cancelled))
        return "done"

    driver = Driver(orch)
    driver.episode(h.started("Fired"))
    assert driver.episode(h.timer_fired(0, T0 + HOUR), at=T0 + HOUR).actions == (completed(1, '"done"'),)
    assert seen[-1] == (False, False)


def test_waiting_on_a_cancelled_timer_fails_the_instance_saying_why() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        timer = ctx.create_timer(timedelta(hours=1))
        timer.cancel()
        yield timer

    completion = h.replay(orch, new=[h.started("WaitCancelled")]).completion
    assert completion is not None and completion.failure_details is not None
    assert "cancelled timer" in completion.failure_details.message


def _waits_on(build):  # type: ignore[no-untyped-def]
    def orch(ctx: OrchestrationContext, _: None):
        timer = ctx.create_timer(timedelta(hours=1))
        timer.cancel()
        yield build(ctx, timer)
        return "done"

    return orch


@pytest.mark.parametrize(
    "build",
    [
        lambda ctx, timer: when_all([ctx.call_activity("A"), timer]),
        lambda ctx, timer: when_any([timer]),
        lambda ctx, timer: when_any([when_all([timer]), timer]),
        lambda ctx, timer: when_all([when_any([timer]), ctx.call_activity("A")]),
    ],
    ids=["when_all", "when_any_of_it_alone", "nested_any_of_all", "nested_all_of_any"],
)
def test_waiting_on_a_cancelled_timer_inside_when_all_or_when_any_fails_the_same_way(build) -> None:  # type: ignore[no-untyped-def]
    completion = h.replay(_waits_on(build), new=[h.started("WaitCancelled")]).completion
    assert completion is not None and completion.failure_details is not None, "the instance waits forever"
    assert "cancelled timer" in completion.failure_details.message


def test_when_any_over_a_cancelled_timer_and_another_task_completes_with_the_other() -> None:
    orch = _waits_on(lambda ctx, timer: when_any([timer, ctx.wait_for_external_event("Go")]))
    driver = Driver(orch)
    assert driver.episode(h.started("AnyCancelled")).actions == (CreateTimer(id=0, fire_at=T0 + HOUR),)
    assert driver.episode(h.event_raised("Go"), at=T0 + SECOND).actions == (completed(1, '"done"'),)


# --- retries ---

BACKOFF = RetryPolicy(
    first_retry_interval=timedelta(seconds=5), max_number_of_attempts=3, backoff_coefficient=2.0
)


def flaky(ctx: OrchestrationContext, _: None):
    try:
        return (yield ctx.call_activity("Flaky", input="x", retry_policy=BACKOFF))
    except TaskFailedError as exc:
        return f"gave up: {exc.details.message}"


def test_failed_attempts_wait_on_durable_timers_with_backoff_then_give_up() -> None:
    driver = Driver(flaky)
    assert driver.episode(h.started("Flaky")).actions == (ScheduleTask(id=0, name="Flaky", input='"x"'),)
    # Attempt 1 fails at T0+1s: wait 5 s.
    at = T0 + SECOND
    assert driver.episode(h.task_failed(0, "e1"), at=at).actions == (
        CreateTimer(id=1, fire_at=at + 5 * SECOND),
    )
    at = T0 + 6 * SECOND
    assert driver.episode(h.timer_fired(1, at), at=at).actions == (
        ScheduleTask(id=2, name="Flaky", input='"x"'),
    )
    # Attempt 2 fails at T0+7s: wait 10 s.
    at = T0 + 7 * SECOND
    assert driver.episode(h.task_failed(2, "e2"), at=at).actions == (
        CreateTimer(id=3, fire_at=at + 10 * SECOND),
    )
    at = T0 + 17 * SECOND
    assert driver.episode(h.timer_fired(3, at), at=at).actions == (
        ScheduleTask(id=4, name="Flaky", input='"x"'),
    )
    # Attempt 3 of 3 fails: the failure reaches the orchestrator.
    done = driver.episode(h.task_failed(4, "e3"), at=T0 + 18 * SECOND)
    assert done.actions == (completed(5, '"gave up: e3"'),)


def test_a_retry_that_succeeds_returns_the_result() -> None:
    driver = Driver(flaky)
    driver.episode(h.started("Flaky"))
    driver.episode(h.task_failed(0), at=T0)
    driver.episode(h.timer_fired(1, T0 + 5 * SECOND), at=T0 + 5 * SECOND)
    assert driver.episode(h.task_completed(2, "ok"), at=T0 + 6 * SECOND).actions == (completed(3, '"ok"'),)


def test_a_non_retriable_failure_is_not_retried() -> None:
    """A poisoned work item fails its call as non-retriable (IsNonRetriable, as the reference's
    FailureDetails has it): another attempt would crash as many workers again."""
    driver = Driver(flaky)
    driver.episode(h.started("Flaky"))
    failure = ev.TaskFailed(
        timestamp=T0,
        task_scheduled_id=0,
        reason="poisoned",
        failure_details=FailureDetails(message="poisoned", error_type="x.Poison", is_non_retriable=True),
    )
    assert driver.episode(failure, at=T0 + SECOND).actions == (completed(1, '"gave up: poisoned"'),)


def test_retry_delays_are_capped_by_max_retry_interval() -> None:
    policy = RetryPolicy(
        first_retry_interval=SECOND,
        max_number_of_attempts=5,
        backoff_coefficient=10.0,
        max_retry_interval=timedelta(seconds=30),
    )

    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A", retry_policy=policy)

    driver = Driver(orch)
    driver.episode(h.started("Cap"))
    delays, task_id = [], 0
    for _ in range(4):
        result = driver.episode(h.task_failed(task_id), at=T0)
        (timer,) = result.actions
        assert isinstance(timer, CreateTimer)
        delays.append(timer.fire_at - T0)
        (retry,) = driver.episode(h.timer_fired(timer.id, timer.fire_at), at=T0).actions
        assert isinstance(retry, ScheduleTask)
        task_id = retry.id
    assert delays == [SECOND, 10 * SECOND, 30 * SECOND, 30 * SECOND]
    final = driver.episode(h.task_failed(task_id), at=T0).completion
    assert final is not None and final.status is OrchestrationStatus.FAILED


def test_no_retry_starts_after_retry_timeout() -> None:
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=10),
        max_number_of_attempts=10,
        retry_timeout=timedelta(seconds=15),
    )

    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A", retry_policy=policy)

    driver = Driver(orch)
    driver.episode(h.started("Timeout"))
    assert driver.episode(h.task_failed(0), at=T0 + SECOND).actions == (
        CreateTimer(id=1, fire_at=T0 + 11 * SECOND),
    )
    driver.episode(h.timer_fired(1, T0 + 11 * SECOND), at=T0 + 11 * SECOND)
    # Attempt 2 fails at T0+15s: the retry window is over.
    final = driver.episode(h.task_failed(2), at=T0 + 15 * SECOND).completion
    assert final is not None and final.status is OrchestrationStatus.FAILED


def test_sub_orchestration_retries_reuse_the_child_instance_id() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, max_number_of_attempts=2)

    def orch(ctx: OrchestrationContext, _: None):
        return (yield ctx.call_sub_orchestrator("Child", input=1, retry_policy=policy))

    driver = Driver(orch)
    first = CreateSubOrchestration(id=0, name="Child", instance_id="test-instance:0000", input="1")
    assert driver.episode(h.started("Parent")).actions == (first,)
    assert driver.episode(h.sub_orch_failed(0), at=T0).actions == (CreateTimer(id=1, fire_at=T0 + SECOND),)
    again = driver.episode(h.timer_fired(1, T0 + SECOND), at=T0 + SECOND)
    assert again.actions == (
        CreateSubOrchestration(id=2, name="Child", instance_id="test-instance:0000", input="1"),
    )
    assert driver.episode(h.sub_orch_completed(2, 7), at=T0 + 2 * SECOND).actions == (completed(3, "7"),)


def test_retry_policy_must_be_a_retry_policy() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A", retry_policy={"attempts": 3})  # type: ignore[arg-type]

    completion = h.replay(orch, new=[h.started("Bad")]).completion
    assert completion is not None and completion.failure_details is not None
    assert "retry_policy must be a RetryPolicy" in completion.failure_details.message


# --- RetryPolicy as a value ---


def test_retry_policy_delay_arithmetic() -> None:
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=2), max_number_of_attempts=4, backoff_coefficient=3
    )
    assert [policy.delay_before(n) for n in (2, 3, 4)] == [timedelta(seconds=s) for s in (2, 6, 18)]
    assert policy.next_delay(attempts_made=1, first_attempt_at=T0, now=T0) == timedelta(seconds=2)
    assert policy.next_delay(attempts_made=4, first_attempt_at=T0, now=T0) is None
    with pytest.raises(ValueError, match="attempt must be >= 2"):
        policy.delay_before(1)


def test_retry_policy_is_a_frozen_keyword_only_value() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, max_number_of_attempts=2)
    assert policy == RetryPolicy(
        first_retry_interval=SECOND, max_number_of_attempts=2, backoff_coefficient=1.0
    )
    with pytest.raises(AttributeError):
        policy.max_number_of_attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(SECOND, 2)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first_retry_interval": -SECOND, "max_number_of_attempts": 1}, "first_retry_interval must be >= 0"),
        (
            {"first_retry_interval": 5, "max_number_of_attempts": 1},
            "first_retry_interval must be a timedelta",
        ),
        (
            {"first_retry_interval": SECOND, "max_number_of_attempts": 0},
            "max_number_of_attempts must be an int >= 1",
        ),
        ({"first_retry_interval": SECOND, "max_number_of_attempts": True}, "max_number_of_attempts"),
        (
            {"first_retry_interval": SECOND, "max_number_of_attempts": 1, "backoff_coefficient": 0.5},
            "backoff_coefficient must be a number >= 1",
        ),
        (
            {"first_retry_interval": SECOND, "max_number_of_attempts": 1, "max_retry_interval": -SECOND},
            "max_retry_interval must be >= 0",
        ),
        (
            {"first_retry_interval": SECOND, "max_number_of_attempts": 1, "retry_timeout": -SECOND},
            "retry_timeout must be >= 0",
        ),
    ],
)
def test_retry_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_retry_delay_longer_than_six_days_is_chained_too() -> None:
    policy = RetryPolicy(first_retry_interval=timedelta(days=7), max_number_of_attempts=2)

    def orch(ctx: OrchestrationContext, _: None):
        return (yield ctx.call_activity("Slow", retry_policy=policy))

    driver = Driver(orch)
    driver.episode(h.started("Slow"))
    assert driver.episode(h.task_failed(0), at=T0).actions == (CreateTimer(id=1, fire_at=T0 + 3 * DAY),)
    step = driver.episode(h.timer_fired(1, T0 + 3 * DAY), at=T0 + 3 * DAY)
    assert step.actions == (CreateTimer(id=2, fire_at=T0 + 6 * DAY),)
    step = driver.episode(h.timer_fired(2, T0 + 6 * DAY), at=T0 + 6 * DAY)
    assert step.actions == (CreateTimer(id=3, fire_at=T0 + 7 * DAY),)
    retry = driver.episode(h.timer_fired(3, T0 + 7 * DAY), at=T0 + 7 * DAY)
    assert retry.actions == (ScheduleTask(id=4, name="Slow"),)
