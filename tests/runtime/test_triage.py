"""How a batch of control-queue messages sorts out against an instance's state (no storage).

The continue-as-new window (#544): between the commit that ends a generation and the
episode that runs the next ExecutionStarted, messages for the instance must wait, not vanish.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from durablehub.engine import history as ev
from durablehub.runtime.orchestrations import InstanceState, _starts_a_new_instance, _triage
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.queues import ReceivedMessage
from durablehub.testing import history as h
from durablehub.testing.history import T0

IID = "counter"
OLD, NEXT = "a" * 32, "b" * 32
MAX_EARLY = 5
_ids = itertools.count()


def message(
    event: ev.HistoryEvent, execution_id: str | None, *, dequeues: int = 1, second: int = 0
) -> ReceivedMessage:
    data = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=event,
            orchestration_instance=ev.OrchestrationInstance(instance_id=IID, execution_id=execution_id),
        )
    )
    return ReceivedMessage(
        message_id=f"m{next(_ids)}",
        pop_receipt="r",
        dequeue_count=dequeues,
        inserted_on=T0 + timedelta(seconds=second),
        next_visible_on=None,
        body="",
        message=data,
    )


def ended(last: ev.HistoryEvent) -> InstanceState:
    state = InstanceState(instance_id=IID)
    state.append([h.orchestrator_started(), h.started("Counter", instance_id=IID, execution_id=OLD), last])
    return state


CONTINUED = ended(ev.ContinueAsNew(event_id=1, timestamp=T0, result="1"))
COMPLETED = ended(h.execution_completed(1, "done"))
NEXT_START = h.started("Counter", 1, instance_id=IID, execution_id=NEXT, generation=1)


def test_an_event_raised_before_the_next_generations_start_joins_that_generation() -> None:
    raised, start = message(h.event_raised("add", 1), None, second=0), message(NEXT_START, NEXT, second=1)
    t = _triage(IID, CONTINUED, [raised, start], MAX_EARLY)
    assert t.new_start == NEXT_START
    assert [type(e) for e in t.accepted] == [ev.EventRaised]
    assert sorted(t.delete) == sorted([raised.message_id, start.message_id]) and not t.abandon


def test_without_the_next_start_events_for_it_are_held_back_not_deleted() -> None:
    raised = message(h.event_raised("add", 1), None)
    carried = message(h.event_raised("add", 2), NEXT)  # save_events: addressed to the next generation
    t = _triage(IID, CONTINUED, [raised, carried], MAX_EARLY)
    assert t.abandon == [raised.message_id, carried.message_id] and not t.delete and not t.accepted


def test_held_back_messages_are_discarded_after_the_early_message_limit() -> None:
    stuck = message(h.event_raised("add", 1), None, dequeues=MAX_EARLY)
    t = _triage(IID, CONTINUED, [stuck], MAX_EARLY)
    assert t.delete == [stuck.message_id] and "continued as new" in t.discards[0][1]


def test_the_ended_generations_own_timer_is_dropped() -> None:
    fired = message(h.timer_fired(0, T0), OLD)
    t = _triage(IID, CONTINUED, [fired], MAX_EARLY)
    assert t.delete == [fired.message_id] and not t.abandon and not t.accepted


def test_an_old_generations_timer_is_not_delivered_to_the_next() -> None:
    fired, start = message(h.timer_fired(0, T0), OLD, second=0), message(NEXT_START, NEXT, second=1)
    t = _triage(IID, CONTINUED, [fired, start], MAX_EARLY)
    assert t.new_start == NEXT_START and not t.accepted
    assert sorted(t.delete) == sorted([fired.message_id, start.message_id])


def test_events_for_a_completed_instance_are_still_dropped() -> None:
    raised = message(h.event_raised("add", 1), None)
    t = _triage(IID, COMPLETED, [raised], MAX_EARLY)
    assert t.delete == [raised.message_id] and not t.abandon


def _retried(at: int) -> InstanceState:
    """Task 1 failed and was scheduled again under the same id at T0 + ``at`` s (the durabletask
    SDK's retry policies reuse the id of the call they retry)."""
    state = InstanceState(instance_id=IID)
    first_failure = ev.TaskFailed(task_scheduled_id=1, reason="boom", timestamp=T0 + timedelta(seconds=1))
    state.append(
        [
            h.orchestrator_started(),
            h.started("Retrying", instance_id=IID, execution_id=OLD),
            ev.TaskScheduled(event_id=1, name="Flaky", timestamp=T0),
            first_failure,
            ev.TaskScheduled(event_id=1, name="Flaky", timestamp=T0 + timedelta(seconds=at)),
        ]
    )
    return state


def test_an_answer_to_a_call_scheduled_again_under_its_id_is_accepted() -> None:
    second_failure = ev.TaskFailed(
        task_scheduled_id=1, reason="boom again", timestamp=T0 + timedelta(seconds=3)
    )
    t = _triage(IID, _retried(at=2), [message(second_failure, OLD)], MAX_EARLY)
    assert t.accepted == [second_failure]


def test_a_redelivered_answer_to_the_earlier_attempt_is_dropped() -> None:
    first_again = ev.TaskFailed(task_scheduled_id=1, reason="boom", timestamp=T0 + timedelta(seconds=1))
    t = _triage(IID, _retried(at=2), [message(first_again, OLD)], MAX_EARLY)
    assert t.accepted == [] and len(t.delete) == 1


def _child(parent_execution: str, attempt: int) -> ev.ExecutionStarted:
    from durablehub.engine.episode import derived_execution_id, sub_orchestration_call

    execution = derived_execution_id(parent_execution, sub_orchestration_call(attempt, 1))
    start = h.started("Child", instance_id=IID, execution_id=execution)
    parent = ev.ParentInstance(
        name="Parent",
        orchestration_instance=ev.OrchestrationInstance(instance_id="parent", execution_id=parent_execution),
        task_schedule_id=1,
    )
    return ev.ExecutionStarted(
        timestamp=start.timestamp,
        orchestration_instance=start.orchestration_instance,
        name="Child",
        parent_instance=parent,
    )


def _failed_child(first: ev.ExecutionStarted) -> InstanceState:
    state = InstanceState(instance_id=IID)
    failed = ev.ExecutionCompleted(
        event_id=1, timestamp=T0, orchestration_status=ev.OrchestrationStatus.FAILED
    )
    state.append([h.orchestrator_started(), first, failed])
    return state


def test_a_parent_retrying_its_call_starts_the_finished_child_again() -> None:
    first, retry = _child("p-exec", 0), _child("p-exec", 1)
    t = _triage(
        IID, _failed_child(first), [message(retry, retry.orchestration_instance.execution_id)], MAX_EARLY
    )
    assert t.new_start == retry


def test_a_parent_rerun_that_drew_a_fresh_id_does_not_restart_the_finished_child() -> None:
    first = _child("p-exec", 0)
    rerun = ev.ExecutionStarted(
        timestamp=first.timestamp,
        orchestration_instance=ev.OrchestrationInstance(instance_id=IID, execution_id="f" * 32),
        name="Child",
        parent_instance=first.parent_instance,
    )
    t = _triage(IID, _failed_child(first), [message(rerun, "f" * 32)], MAX_EARLY)
    assert t.new_start is None and len(t.delete) == 1


def test_only_a_first_delivery_of_a_clients_generation_0_start_skips_the_history_read() -> None:
    fresh = h.started("Counter", instance_id=IID, execution_id=NEXT, generation=0)
    raised = message(h.event_raised("add", 1), None)
    assert _starts_a_new_instance([message(fresh, NEXT), raised])
    assert not _starts_a_new_instance([message(fresh, NEXT, dequeues=2)])  # may follow a commit
    assert not _starts_a_new_instance(
        [message(fresh, NEXT), message(h.event_raised("add", 1), None, dequeues=2)]
    )
    assert not _starts_a_new_instance([message(NEXT_START, NEXT)])  # Generation 1: a restart
    child = h.started("Counter", instance_id=IID, execution_id=NEXT, parent_instance_id="p", generation=0)
    assert not _starts_a_new_instance([message(child, NEXT)])  # a parent's call may be repeated
    unknown = h.started("Counter", instance_id=IID, execution_id=NEXT)  # no Generation written
    assert not _starts_a_new_instance([message(unknown, NEXT)])
    assert not _starts_a_new_instance([raised])
