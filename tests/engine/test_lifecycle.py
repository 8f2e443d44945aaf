"""How orchestrations end, pause and restart: completion, failure, termination, suspension,
continue-as-new, and the events the engine must ignore."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration, ScheduleTask, SendEvent
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.errors import OrchestrationStateError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.task import OrchestrationContext
from durablehub.testing import history as h
from durablehub.testing.history import T0

from .simulator import Driver

Status = OrchestrationStatus


def chain(ctx: OrchestrationContext, _: None):
    a = yield ctx.call_activity("A")
    b = yield ctx.call_activity("B", input=a)
    return b


def failure(result_actions: tuple[object, ...]) -> FailureDetails:
    completion = result_actions[-1]
    assert isinstance(completion, CompleteOrchestration)
    assert completion.status is Status.FAILED
    assert completion.failure_details is not None
    return completion.failure_details


# --- failures in user code ---


class OrderError(Exception):
    pass


def test_an_exception_escaping_the_orchestrator_fails_it_with_details() -> None:
    def broken(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A")
        raise OrderError("order 42 is inconsistent")

    result = h.replay(broken, past=[h.started("Broken"), h.task_scheduled(0, "A")], new=[h.task_completed(0)])
    assert result.is_complete
    details = failure(result.actions)
    assert details.error_type == "tests.engine.test_lifecycle.OrderError"
    assert details.message == "order 42 is inconsistent"
    assert (
        details.stack_trace is not None
        and 'raise OrderError("order 42 is inconsistent")' in details.stack_trace
    )
    assert details.is_caused_by(OrderError)


def test_a_plain_function_that_raises_fails_at_once() -> None:
    def broken(ctx: OrchestrationContext, n: int) -> int:
        return 1 // n

    result = h.replay(broken, new=[h.started("Div", 0)])
    assert result.actions[0].id == 0
    assert failure(result.actions).error_type == "builtins.ZeroDivisionError"


def test_actions_made_before_a_failure_are_still_sent() -> None:
    def notify_then_fail(ctx: OrchestrationContext, _: None):
        ctx.send_event("auditor", "Failed", data={"why": "bad"})
        raise RuntimeError("bad")
        yield  # a generator

    result = h.replay(notify_then_fail, new=[h.started("Notify")])
    assert result.actions[0] == SendEvent(id=0, instance_id="auditor", name="Failed", data='{"why":"bad"}')
    assert result.actions[1].id == 1 and failure(result.actions).message == "bad"


def test_an_output_that_is_not_json_fails_the_orchestration() -> None:
    def returns_a_set(ctx: OrchestrationContext, _: None):
        return {1, 2}

    details = failure(h.replay(returns_a_set, new=[h.started("Sets")]).actions)
    assert details.error_type == "durablehub.errors.PayloadError"
    assert "output of orchestrator 'Sets' is not JSON-serializable: value of type set at $" in details.message


def test_yielding_something_else_than_a_task_fails_the_orchestration() -> None:
    def yields_a_number(ctx: OrchestrationContext, _: None):
        yield 5

    details = failure(h.replay(yields_a_number, new=[h.started("Five")]).actions)
    assert details.error_type == "builtins.TypeError"
    assert "orchestrator 'Five' yielded 5" in details.message


def test_async_orchestrators_are_refused() -> None:
    async def not_a_generator(ctx: OrchestrationContext, _: None) -> None:
        return None

    details = failure(h.replay(not_a_generator, new=[h.started("Async")]).actions)
    assert "orchestrators are generator functions" in details.message


def test_input_that_is_not_json_fails_the_orchestration() -> None:
    bad = ev.ExecutionStarted(
        name="Bad", input="{not json", orchestration_instance=ev.OrchestrationInstance(instance_id="i")
    )
    details = failure(h.replay(chain, new=[bad]).actions)
    assert "input of orchestrator 'Bad' is not valid JSON" in details.message


def test_a_result_that_is_not_json_fails_the_orchestration() -> None:
    bad = ev.TaskCompleted(task_scheduled_id=0, result="{oops")
    details = failure(h.replay(chain, past=[h.started("Chain"), h.task_scheduled(0, "A")], new=[bad]).actions)
    assert "result of activity 'A' is not valid JSON" in details.message


def test_a_failure_recorded_without_details_still_reaches_the_orchestrator() -> None:
    legacy = ev.TaskFailed(task_scheduled_id=0, reason="legacy reason", details="legacy stack")
    details = failure(
        h.replay(chain, past=[h.started("Chain"), h.task_scheduled(0, "A")], new=[legacy]).actions
    )
    assert details.inner_failure == FailureDetails(
        message="legacy reason", error_type="Unknown", stack_trace="legacy stack"
    )


# --- termination ---


def test_terminate_completes_with_the_reason() -> None:
    result = h.replay(
        chain, past=[h.started("Chain"), h.task_scheduled(0, "A")], new=[h.terminated("stop it")]
    )
    assert result.actions == (CompleteOrchestration(id=1, status=Status.TERMINATED, result='"stop it"'),)
    assert result.is_complete


def test_terminate_drops_the_actions_of_the_same_episode() -> None:
    result = h.replay(
        chain,
        past=[h.started("Chain"), h.task_scheduled(0, "A")],
        new=[h.task_completed(0, 1), h.terminated()],
    )
    assert result.actions == (CompleteOrchestration(id=2, status=Status.TERMINATED),)


def test_events_after_the_end_are_ignored() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    driver.episode(h.terminated())
    later = driver.episode(h.task_completed(0, 1), h.event_raised("X"), h.timer_fired(9, T0))
    assert later.actions == () and later.is_complete


# --- suspension ---


def test_suspended_instances_hold_events_until_resumed() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    held = driver.episode(h.suspended(), h.task_completed(0, "a"))
    assert held.actions == () and held.is_suspended
    resumed = driver.episode(h.resumed())
    assert resumed.actions == (ScheduleTask(id=1, name="B", input='"a"'),)
    assert not resumed.is_suspended


def test_held_events_are_delivered_in_arrival_order() -> None:
    def two_events(ctx: OrchestrationContext, _: None):
        first = yield ctx.wait_for_external_event("E")
        second = yield ctx.wait_for_external_event("E")
        return [first, second]

    driver = Driver(two_events)
    driver.episode(h.started("Two"), h.suspended())
    assert driver.episode(h.event_raised("E", 1), h.event_raised("E", 2)).actions == ()
    done = driver.episode(h.resumed())
    assert done.actions == (CompleteOrchestration(id=0, status=Status.COMPLETED, result="[1,2]"),)


def test_a_suspended_instance_can_be_terminated() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"), h.suspended())
    result = driver.episode(h.task_completed(0), h.terminated("bye"))
    assert result.actions == (CompleteOrchestration(id=1, status=Status.TERMINATED, result='"bye"'),)


def test_resume_without_suspend_does_nothing() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    assert driver.episode(h.resumed()).actions == ()


# --- continue-as-new ---


def restart_on_go(save_events: bool):
    def orch(ctx: OrchestrationContext, seen: list[int]):
        got = yield ctx.wait_for_external_event("Go")
        ctx.continue_as_new([*seen, got], save_events=save_events)

    return orch


def test_continue_as_new_carries_unprocessed_events_when_saving_them() -> None:
    new = [
        h.started("Loop", []),
        h.event_raised("Other", "x"),
        h.event_raised("Go", 1),
        h.event_raised("Go", 2),
        h.event_raised("go", 3),
    ]
    result = h.replay(restart_on_go(True), new=new)
    assert result.actions == (
        CompleteOrchestration(
            id=0,
            status=Status.CONTINUED_AS_NEW,
            new_input="[1]",
            carryover_events=(
                ev.EventRaised(name="Other", input='"x"', timestamp=T0),
                ev.EventRaised(name="Go", input="2", timestamp=T0),
                ev.EventRaised(name="go", input="3", timestamp=T0),
            ),
        ),
    )


def test_continue_as_new_drops_unprocessed_events_by_default() -> None:
    new = [h.started("Loop", []), h.event_raised("Go", 1), h.event_raised("Go", 2)]
    result = h.replay(restart_on_go(False), new=new)
    assert result.actions == (CompleteOrchestration(id=0, status=Status.CONTINUED_AS_NEW, new_input="[1]"),)


def test_continue_as_new_wins_over_a_later_return_value() -> None:
    def orch(ctx: OrchestrationContext, n: int):
        yield ctx.create_timer(timedelta(hours=1))
        ctx.continue_as_new(n + 1)
        return "ignored"

    result = h.replay(
        orch,
        past=[h.started("Loop", 1), h.timer_created(0, T0 + timedelta(hours=1))],
        new=[h.timer_fired(0, T0 + timedelta(hours=1))],
    )
    assert result.actions == (CompleteOrchestration(id=1, status=Status.CONTINUED_AS_NEW, new_input="2"),)


# --- events that must be ignored ---


def test_completions_for_unknown_ids_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    new = [
        h.task_completed(99),
        h.task_failed(98),
        h.timer_fired(42, T0),
        h.sub_orch_completed(7),
        h.sub_orch_failed(8),
    ]
    with caplog.at_level(logging.WARNING, logger="durablehub.engine"):
        result = h.replay(chain, past=[h.started("Chain"), h.task_scheduled(0, "A")], new=new)
    assert result.actions == () and not result.is_complete
    assert sum("ignoring" in r.getMessage() for r in caplog.records) == 5


def test_duplicate_completions_are_ignored() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    assert driver.episode(h.task_completed(0, "a")).actions == (ScheduleTask(id=1, name="B", input='"a"'),)
    assert driver.episode(h.task_completed(0, "again"), h.task_failed(0)).actions == ()
    done = driver.episode(h.task_completed(1, "b"), h.task_completed(1, "b"))
    assert done.actions == (CompleteOrchestration(id=2, status=Status.COMPLETED, result='"b"'),)


def test_a_completion_of_the_wrong_kind_is_ignored() -> None:
    def sleeper(ctx: OrchestrationContext, _: None):
        yield ctx.create_timer(timedelta(hours=1))
        return "woke"

    driver = Driver(sleeper)
    driver.episode(h.started("Sleep"))
    assert driver.episode(h.task_completed(0, "not a timer"), h.sub_orch_completed(0)).actions == ()
    assert driver.episode(h.timer_fired(0, T0)).actions[0].id == 1


def test_a_second_execution_started_is_ignored() -> None:
    driver = Driver(chain)
    driver.episode(h.started("Chain"))
    assert driver.episode(h.started("Chain")).actions == ()


def test_history_events_without_replay_meaning_are_skipped() -> None:
    new = [h.started("Chain"), ev.GenericEvent(data="x"), ev.HistoryState(), ev.ExecutionRewound()]
    assert h.replay(chain, new=new).actions == (ScheduleTask(id=0, name="A"),)


def test_execute_needs_a_fresh_executor() -> None:
    executor = OrchestrationExecutor(chain)
    executor.resume([h.started("Chain")])
    with pytest.raises(OrchestrationStateError, match="call resume"):
        executor.execute([], [])


def test_executor_reports_its_state() -> None:
    executor = OrchestrationExecutor(chain)
    executor.resume([h.started("Chain", instance_id="abc")])
    assert (executor.instance_id, executor.is_complete, executor.is_suspended) == ("abc", False, False)
    with pytest.raises(TypeError, match="must be callable"):
        OrchestrationExecutor("not a function")  # type: ignore[arg-type]


@pytest.mark.parametrize("child_id", ["a/b", "..", "x#y", "@counter@k", "tab\there"])
def test_a_sub_orchestration_id_that_a_client_could_not_use_fails_the_orchestrator(child_id: str) -> None:
    """The rules of ``schedule_new_orchestration`` apply to a child's id too: '/', '..' and the
    like would become path segments of its blob names and URLs."""

    def parent(ctx: OrchestrationContext, _: None):
        return (yield ctx.call_sub_orchestrator("Child", instance_id=child_id))

    result = h.replay(parent, new=[h.started("Parent")])
    details = failure(result.actions)
    assert details.error_type == "builtins.ValueError" and repr(child_id) in details.message
    assert not [a for a in result.actions if not isinstance(a, CompleteOrchestration)]
