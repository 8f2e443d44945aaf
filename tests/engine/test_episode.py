"""plan_episode: an episode's actions become history events and outbound messages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from durablehub.engine import history as ev
from durablehub.engine.actions import (
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durablehub.engine.episode import EpisodePlan, OutboundMessage, new_execution_id, plan_episode
from durablehub.engine.replay import EpisodeResult
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.testing import history as h
from durablehub.testing.history import DEFAULT_EXECUTION_ID, DEFAULT_INSTANCE_ID, T0

Status = OrchestrationStatus
NOW = T0 + timedelta(minutes=1)
ME = ev.OrchestrationInstance(instance_id=DEFAULT_INSTANCE_ID, execution_id=DEFAULT_EXECUTION_ID)


def plan(
    *actions: object, started: ev.ExecutionStarted | None = None, suspended: bool = False
) -> EpisodePlan:
    result = EpisodeResult(
        actions=tuple(actions),  # type: ignore[arg-type]  # some tests pass a non-action on purpose
        custom_status=None,
        is_complete=isinstance(actions[-1], CompleteOrchestration) if actions else False,
        is_suspended=suspended,
    )
    ids = iter(["child-exec", "next-exec"])
    return plan_episode(
        result, started=started or h.started("Orch", version="1"), now=NOW, new_execution_id=lambda: next(ids)
    )


def test_schedule_task_is_recorded_and_sent_to_the_work_item_queue() -> None:
    p = plan(ScheduleTask(id=0, name="A", input='"x"', version="2", tags={"k": "v"}))
    scheduled = ev.TaskScheduled(
        event_id=0, timestamp=NOW, name="A", input='"x"', version="2", tags={"k": "v"}
    )
    assert p.history == (scheduled, ev.OrchestratorCompleted(timestamp=NOW))
    assert p.messages == (
        OutboundMessage(
            target_instance_id=DEFAULT_INSTANCE_ID,
            target_execution_id=DEFAULT_EXECUTION_ID,
            event=scheduled,
            to_work_items=True,
        ),
    )
    assert p.runtime_status is Status.RUNNING and p.completion is None


def test_timer_is_recorded_and_sent_to_itself_invisible_until_it_fires() -> None:
    fire_at = T0 + timedelta(days=3)
    p = plan(CreateTimer(id=4, fire_at=fire_at))
    assert p.history[0] == ev.TimerCreated(event_id=4, timestamp=NOW, fire_at=fire_at)
    assert p.messages == (
        OutboundMessage(
            target_instance_id=DEFAULT_INSTANCE_ID,
            target_execution_id=DEFAULT_EXECUTION_ID,
            event=ev.TimerFired(timestamp=NOW, timer_id=4, fire_at=fire_at),
            visible_at=fire_at,
        ),
    )


def test_sub_orchestration_starts_the_child_with_its_parent_and_task_id() -> None:
    p = plan(CreateSubOrchestration(id=2, name="Child", instance_id="kid", input="5", version="3"))
    assert p.history[0] == ev.SubOrchestrationInstanceCreated(
        event_id=2, timestamp=NOW, name="Child", instance_id="kid", input="5", version="3"
    )
    (message,) = p.messages
    assert (message.target_instance_id, message.target_execution_id) == ("kid", "child-exec")
    assert message.event == ev.ExecutionStarted(
        timestamp=NOW,
        name="Child",
        version="3",
        input="5",
        orchestration_instance=ev.OrchestrationInstance(instance_id="kid", execution_id="child-exec"),
        parent_instance=ev.ParentInstance(
            name="Orch", orchestration_instance=ME, task_schedule_id=2, version="1"
        ),
    )


def test_send_event_is_recorded_and_raised_on_the_target() -> None:
    p = plan(SendEvent(id=1, instance_id="other", name="Ping", data="1"))
    assert p.history[0] == ev.EventSent(
        event_id=1, timestamp=NOW, instance_id="other", name="Ping", input="1"
    )
    assert p.messages == (
        OutboundMessage(
            target_instance_id="other",
            target_execution_id=None,
            event=ev.EventRaised(timestamp=NOW, name="Ping", input="1"),
        ),
    )


def test_completion_of_a_top_level_orchestration() -> None:
    p = plan(
        ScheduleTask(id=0, name="A"), CompleteOrchestration(id=1, status=Status.COMPLETED, result='"ok"')
    )
    assert [type(e).__name__ for e in p.history] == [
        "TaskScheduled",
        "ExecutionCompleted",
        "OrchestratorCompleted",
    ]
    assert p.history[1] == ev.ExecutionCompleted(
        event_id=1, timestamp=NOW, orchestration_status=Status.COMPLETED, result='"ok"'
    )
    assert len(p.messages) == 1  # just the activity: nobody to notify
    assert p.runtime_status is Status.COMPLETED
    assert p.completion == CompleteOrchestration(id=1, status=Status.COMPLETED, result='"ok"')


CHILD = h.started("Child", instance_id="kid", parent_instance_id="mom", parent_task_id=7)
MOM = ("mom", "parent-execution")


def test_a_completed_sub_orchestration_reports_to_its_parent() -> None:
    p = plan(CompleteOrchestration(id=0, status=Status.COMPLETED, result="42"), started=CHILD)
    (message,) = p.messages
    assert (message.target_instance_id, message.target_execution_id) == MOM
    assert message.event == ev.SubOrchestrationInstanceCompleted(
        timestamp=NOW, task_scheduled_id=7, result="42"
    )


def test_a_failed_sub_orchestration_reports_its_failure() -> None:
    details = FailureDetails(message="bad", error_type="builtins.ValueError", stack_trace="trace")
    p = plan(CompleteOrchestration(id=0, status=Status.FAILED, failure_details=details), started=CHILD)
    assert p.messages[0].event == ev.SubOrchestrationInstanceFailed(
        timestamp=NOW, task_scheduled_id=7, reason="bad", details="trace", failure_details=details
    )
    assert p.runtime_status is Status.FAILED


def test_a_terminated_sub_orchestration_reports_a_failure_with_the_reason() -> None:
    p = plan(CompleteOrchestration(id=0, status=Status.TERMINATED, result='"stop"'), started=CHILD)
    assert p.messages[0].event == ev.SubOrchestrationInstanceFailed(
        timestamp=NOW, task_scheduled_id=7, reason='"stop"'
    )
    assert p.history[0] == ev.ExecutionCompleted(
        event_id=0, timestamp=NOW, orchestration_status=Status.TERMINATED, result='"stop"'
    )


def test_continue_as_new_starts_the_next_generation_with_carried_events() -> None:
    started = h.started(
        "Loop", 1, generation=4, instance_id="kid", parent_instance_id="mom", parent_task_id=7
    )
    carried = (ev.EventRaised(timestamp=T0, name="Go", input="2"),)
    p = plan(
        SendEvent(id=0, instance_id="x", name="E"),
        CompleteOrchestration(id=1, status=Status.CONTINUED_AS_NEW, new_input="2", carryover_events=carried),
        started=started,
    )
    assert [type(e).__name__ for e in p.history] == ["EventSent", "ContinueAsNew"]
    assert p.history[1] == ev.ContinueAsNew(event_id=1, timestamp=NOW, result="2")
    assert p.runtime_status is Status.CONTINUED_AS_NEW
    assert p.next_execution_id == "child-exec"
    start, event = p.next_generation
    assert start.target_instance_id == "kid" and start.target_execution_id == "child-exec"
    assert start.event == ev.ExecutionStarted(
        timestamp=NOW,
        name="Loop",
        input="2",
        generation=5,
        parent_instance=started.parent_instance,
        orchestration_instance=ev.OrchestrationInstance(instance_id="kid", execution_id="child-exec"),
    )
    assert event.event is carried[0] and event.target_execution_id == "child-exec"
    assert len(p.messages) == 3  # the event to "x", then the next generation; nothing to the parent


def test_continue_as_new_with_a_new_version() -> None:
    p = plan(CompleteOrchestration(id=0, status=Status.CONTINUED_AS_NEW, new_input="1", new_version="v2"))
    assert isinstance(p.messages[0].event, ev.ExecutionStarted)
    assert p.messages[0].event.version == "v2" and p.messages[0].event.generation == 1


def test_an_episode_without_actions_still_records_its_end() -> None:
    assert plan().history == (ev.OrchestratorCompleted(timestamp=NOW),)
    assert plan().next_generation == ()
    assert plan(suspended=True).runtime_status is Status.SUSPENDED


def test_default_execution_ids_look_like_dtfx_guids() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", new_execution_id())
    assert new_execution_id() != new_execution_id()


def test_unknown_actions_are_refused() -> None:
    with pytest.raises(TypeError, match="not an orchestrator action"):
        plan("not an action")


def test_two_runs_of_one_episode_start_the_same_child_and_next_generation() -> None:
    """A worker that lost its lease mid-episode and the new owner plan the same episode: the
    starts they send carry equal execution ids, so the receiver keeps one and drops the other
    as a duplicate, with the events carried over to it."""
    started = h.started("Loop", 1)
    actions = (
        CreateSubOrchestration(id=0, name="Child", instance_id="kid"),
        CreateSubOrchestration(id=1, name="Child", instance_id="kid2"),
        CompleteOrchestration(id=2, status=Status.CONTINUED_AS_NEW, new_input="2"),
    )
    result = EpisodeResult(actions=actions, custom_status=None, is_complete=True, is_suspended=False)
    stale, fresh = (plan_episode(result, started=started, now=NOW) for _ in range(2))
    assert stale.messages == fresh.messages
    ids = [m.target_execution_id for m in stale.messages]
    assert len(set(ids)) == 3 and DEFAULT_EXECUTION_ID not in ids
    assert all(re.fullmatch(r"[0-9a-f]{32}", i or "") for i in ids)
    # Another generation of the same instance starts other executions.
    other = h.started("Loop", 1, execution_id="another-generation")
    assert not {m.target_execution_id for m in plan_episode(result, started=other, now=NOW).messages} & set(
        ids
    )


def test_a_call_that_starts_its_child_again_under_its_id_gets_a_new_execution() -> None:
    """The durabletask SDK retries a sub-orchestration under the call's id and instance id: the
    retry's start must not look like a duplicate of the first attempt's."""
    started = h.started("Parent", 1)
    result = EpisodeResult(
        actions=(CreateSubOrchestration(id=1, name="Child", instance_id="kid"),),
        custom_status=None,
        is_complete=False,
        is_suspended=False,
    )
    first = plan_episode(result, started=started, now=NOW).messages[0].target_execution_id
    retry = plan_episode(result, started=started, now=NOW, started_before={1: 1})
    again = plan_episode(result, started=started, now=NOW, started_before={1: 1})
    assert retry.messages[0].target_execution_id != first
    assert retry.messages == again.messages  # still the same for two runs of the retry's episode
