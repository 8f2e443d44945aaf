"""Replay must match history: a mismatch fails the instance with NonDeterminismError naming both sides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durablehub.engine.actions import CompleteOrchestration, ScheduleTask
from durablehub.engine.determinism import describe_action, describe_event
from durablehub.errors import NonDeterminismError
from durablehub.models import OrchestrationStatus
from durablehub.task import OrchestrationContext
from durablehub.testing import history as h
from durablehub.testing.history import T0


def nondeterminism_message(result_actions: tuple[object, ...]) -> str:
    """The failure message, after checking the instance failed with NonDeterminismError and nothing else."""
    assert len(result_actions) == 1, f"actions besides the failure: {result_actions}"
    completion = result_actions[0]
    assert isinstance(completion, CompleteOrchestration)
    assert completion.status is OrchestrationStatus.FAILED
    assert completion.failure_details is not None
    assert completion.failure_details.error_type == "durablehub.errors.NonDeterminismError"
    return completion.failure_details.message


def calls_b(ctx: OrchestrationContext, _: None):
    yield ctx.call_activity("B")


def test_wrong_activity_name() -> None:
    result = h.replay(calls_b, past=[h.started("Orch"), h.task_scheduled(0, "A")], new=[h.task_completed(0)])
    message = nondeterminism_message(result.actions)
    assert message.startswith(
        "history has TaskScheduled(id=0, name='A') but the orchestrator called call_activity('B')"
    )


def test_wrong_kind_of_call() -> None:
    fire_at = T0 + timedelta(hours=1)
    result = h.replay(
        calls_b, past=[h.started("Orch"), h.timer_created(0, fire_at)], new=[h.timer_fired(0, fire_at)]
    )
    message = nondeterminism_message(result.actions)
    assert message.startswith(
        "history has TimerCreated(id=0, fire_at=2024-01-01T01:00:00+00:00) "
        "but the orchestrator called call_activity('B')"
    )


def test_wrong_sub_orchestration_target() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_sub_orchestrator("Child", instance_id="child-2")

    result = h.replay(orch, past=[h.started("Orch"), h.sub_orch_created(0, "Child", "child-1")], new=[])
    assert nondeterminism_message(result.actions).startswith(
        "history has SubOrchestrationInstanceCreated(id=0, name='Child', instance_id='child-1') "
        "but the orchestrator called call_sub_orchestrator('Child', instance_id='child-2')"
    )


def test_wrong_sub_orchestration_name() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_sub_orchestrator("Other")

    result = h.replay(orch, past=[h.started("Orch"), h.sub_orch_created(0, "Child")], new=[])
    assert "but the orchestrator called call_sub_orchestrator('Other'" in nondeterminism_message(
        result.actions
    )


def test_wrong_event_target() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        ctx.send_event("someone-else", "Ping")
        yield ctx.wait_for_external_event("Pong")

    result = h.replay(orch, past=[h.started("Orch"), h.event_sent(0, "friend", "Ping")], new=[])
    assert nondeterminism_message(result.actions).startswith(
        "history has EventSent(id=0, instance_id='friend', name='Ping') "
        "but the orchestrator called send_event('someone-else', 'Ping')"
    )


def test_event_names_match_ignoring_case() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        ctx.send_event("friend", "PING")
        yield ctx.wait_for_external_event("Pong")

    result = h.replay(orch, past=[h.started("Orch"), h.event_sent(0, "friend", "ping")], new=[])
    assert result.actions == () and not result.is_complete


def test_history_has_a_call_the_code_no_longer_makes() -> None:
    def one_call(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("A")
        return "done"

    past = [h.started("Orch"), h.task_scheduled(0, "A"), h.task_scheduled(1, "A")]
    message = nondeterminism_message(h.replay(one_call, past=past, new=[]).actions)
    assert message.startswith(
        "history has TaskScheduled(id=1, name='A') but the orchestrator made no call with id 1"
    )


def test_code_makes_more_calls_than_the_replayed_episode_recorded() -> None:
    def fan(ctx: OrchestrationContext, _: None):
        first, second = ctx.call_activity("A"), ctx.call_activity("B")
        yield first
        yield second

    past = [h.orchestrator_started(), h.started("Orch"), h.task_scheduled(0, "A"), h.orchestrator_completed()]
    message = nondeterminism_message(h.replay(fan, past=past, new=[h.orchestrator_started()]).actions)
    assert message.startswith(
        "the orchestrator called call_activity('B') (id=1) but history has no matching event in that episode"
    )


def test_unconfirmed_calls_of_the_current_episode_are_new_actions_not_errors() -> None:
    result = h.replay(calls_b, new=[h.orchestrator_started(), h.started("Orch"), h.orchestrator_completed()])
    assert result.actions == (ScheduleTask(id=0, name="B"),)


def test_actions_not_recorded_because_the_runtime_crashed_are_produced_again() -> None:
    # The previous episode's OrchestratorCompleted and TaskScheduled never reached history.
    result = h.replay(
        calls_b, past=[h.orchestrator_started(), h.started("Orch")], new=[h.orchestrator_started()]
    )
    assert result.actions == (ScheduleTask(id=0, name="B"),)


def test_a_recorded_end_that_replay_does_not_reach_is_adopted() -> None:
    past = [
        h.started("Orch"),
        h.task_scheduled(0, "B"),
        h.execution_completed(1, status=OrchestrationStatus.FAILED),
    ]
    result = h.replay(calls_b, past=past, new=[h.task_completed(0)])
    assert result.actions == () and result.is_complete


def test_descriptions() -> None:
    assert describe_event(h.task_scheduled(3, "A")) == "TaskScheduled(id=3, name='A')"
    assert describe_event(h.task_completed(3)) == "TaskCompleted(id=-1)"
    assert describe_action(ScheduleTask(id=3, name="A")) == "call_activity('A')"
    with pytest.raises(TypeError):
        describe_action("nope")  # type: ignore[arg-type]
    assert issubclass(NonDeterminismError, Exception)
