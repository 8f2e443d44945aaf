"""Durable Functions patterns replayed from hand-built histories."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

import durablehub.task as dt
from durablehub.engine.actions import (
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
)
from durablehub.models import OrchestrationStatus
from durablehub.task import OrchestrationContext, TaskFailedError, when_all, when_any
from durablehub.testing import history as h
from durablehub.testing.history import T0

COMPLETED = OrchestrationStatus.COMPLETED


def completed(id: int, result: str | None) -> CompleteOrchestration:
    return CompleteOrchestration(id=id, status=COMPLETED, result=result)


# --- chaining ---


def hello_chain(ctx: OrchestrationContext, _: None):
    a = yield ctx.call_activity("Hello", input="Tokyo")
    b = yield ctx.call_activity("Hello", input="Seattle")
    return [a, b]


def test_first_episode_schedules_the_first_activity() -> None:
    result = h.replay(hello_chain, new=[h.orchestrator_started(), h.started("Chain")])
    assert result.actions == (ScheduleTask(id=0, name="Hello", input='"Tokyo"'),)
    assert not result.is_complete


def test_second_activity_is_scheduled_when_the_first_completes() -> None:
    result = h.replay(
        hello_chain,
        past=[h.started("Chain"), h.task_scheduled(0, "Hello")],
        new=[h.task_completed(0, "Hello Tokyo")],
    )
    assert result.actions == (ScheduleTask(id=1, name="Hello", input='"Seattle"'),)


def test_chain_completes_with_the_results_in_order() -> None:
    past = [
        h.started("Chain"),
        h.task_scheduled(0, "Hello"),
        h.task_completed(0, "Hello Tokyo"),
        h.task_scheduled(1, "Hello"),
    ]
    result = h.replay(hello_chain, past=past, new=[h.task_completed(1, "Hello Seattle")])
    assert result.actions == (completed(2, '["Hello Tokyo","Hello Seattle"]'),)
    assert result.is_complete
    assert result.completion == result.actions[0]


def test_plain_function_orchestrator_completes_at_once() -> None:
    def double(ctx: OrchestrationContext, n: int) -> int:
        return n * 2

    assert h.replay(double, new=[h.started("Double", 21)]).actions == (completed(0, "42"),)


def test_activity_tags_and_function_references() -> None:
    def charge(ctx: dt.ActivityContext, order: dict) -> str:
        return "ok"

    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity(charge, input={"id": 1}, tags={"team": "billing"})

    result = h.replay(orch, new=[h.started("Orch")])
    assert result.actions == (ScheduleTask(id=0, name="charge", input='{"id":1}', tags={"team": "billing"}),)


# --- fan-out / fan-in ---


def fan_out(ctx: OrchestrationContext, n: int):
    results = yield when_all([ctx.call_activity("Square", input=i) for i in range(n)])
    return results


def test_fan_out_schedules_every_activity_in_one_episode() -> None:
    result = h.replay(fan_out, new=[h.started("Fan", 3)])
    assert result.actions == tuple(ScheduleTask(id=i, name="Square", input=str(i)) for i in range(3))


def test_fan_in_returns_results_in_call_order_whatever_the_completion_order() -> None:
    past = [h.started("Fan", 3), *(h.task_scheduled(i, "Square") for i in range(3))]
    partial = h.replay(fan_out, past=past, new=[h.task_completed(2, 4), h.task_completed(0, 0)])
    assert partial.actions == () and not partial.is_complete
    done = h.replay(
        fan_out, past=[*past, h.task_completed(2, 4), h.task_completed(0, 0)], new=[h.task_completed(1, 1)]
    )
    assert done.actions == (completed(3, "[0,1,4]"),)


def fan_out_catching(ctx: OrchestrationContext, _: None):
    try:
        yield when_all([ctx.call_activity("Step", input=i) for i in range(3)])
    except TaskFailedError as exc:
        return f"caught: {exc.details.message}"
    return "no failure"


def test_when_all_surfaces_the_first_failure_only_after_every_child_finished() -> None:
    past = [h.started("Fan"), *(h.task_scheduled(i, "Step") for i in range(3))]
    after_failure = h.replay(fan_out_catching, past=past, new=[h.task_failed(1, "step 1 broke")])
    assert after_failure.actions == () and not after_failure.is_complete

    more = [h.task_failed(1, "step 1 broke"), h.task_failed(0, "step 0 broke")]
    still = h.replay(fan_out_catching, past=past, new=more)
    assert still.actions == ()

    done = h.replay(fan_out_catching, past=[*past, *more], new=[h.task_completed(2, "ok")])
    # The first failure in completion order is the one surfaced.
    assert done.actions == (completed(3, '"caught: step 1 broke"'),)


def test_when_all_of_nothing_completes_at_once() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        return (yield when_all([]))

    assert h.replay(orch, new=[h.started("Empty")]).actions == (completed(0, "[]"),)


# --- when_any: timer against an external event ---


def approval(ctx: OrchestrationContext, _: None):
    timeout = ctx.create_timer(timedelta(hours=72))
    answer = ctx.wait_for_external_event("Approval")
    winner = yield when_any([answer, timeout])
    if winner is answer:
        return f"approved: {answer.get_result()}"
    return "timed out"


APPROVAL_PAST = [
    h.orchestrator_started(),
    h.started("Approval"),
    h.timer_created(0, T0 + timedelta(hours=72)),
]


def test_when_any_creates_the_timer_and_waits() -> None:
    result = h.replay(approval, new=APPROVAL_PAST[:2])
    assert result.actions == (CreateTimer(id=0, fire_at=T0 + timedelta(hours=72)),)


def test_when_any_event_wins() -> None:
    later = T0 + timedelta(hours=1)
    result = h.replay(
        approval,
        past=APPROVAL_PAST,
        new=[h.orchestrator_started(later), h.event_raised("Approval", "yes", at=later)],
    )
    assert result.actions == (completed(1, '"approved: yes"'),)


def test_when_any_timer_wins() -> None:
    fire = T0 + timedelta(hours=72)
    result = h.replay(
        approval, past=APPROVAL_PAST, new=[h.orchestrator_started(fire), h.timer_fired(0, fire)]
    )
    assert result.actions == (completed(1, '"timed out"'),)


def test_when_any_first_of_two_events_in_the_same_episode_wins() -> None:
    def race(ctx: OrchestrationContext, _: None):
        a, b = ctx.wait_for_external_event("A"), ctx.wait_for_external_event("B")
        winner = yield when_any([a, b])
        return winner.get_result()

    result = h.replay(race, new=[h.started("Race"), h.event_raised("B", "b"), h.event_raised("A", "a")])
    assert result.actions == (completed(0, '"b"'),)


# --- external events ---


def collector(ctx: OrchestrationContext, _: None):
    first = yield ctx.call_activity("Work")
    a = yield ctx.wait_for_external_event("Data")
    b = yield ctx.wait_for_external_event("data")
    c = yield ctx.wait_for_external_event("Other")
    return [first, a, b, c]


def test_events_raised_before_the_wait_are_buffered_fifo_per_name_ignoring_case() -> None:
    past = [h.started("Collector"), h.task_scheduled(0, "Work")]
    new = [
        h.event_raised("DATA", 1),
        h.event_raised("Other", "x"),
        h.event_raised("Data", 2),
        h.task_completed(0, "w"),
    ]
    assert h.replay(collector, past=past, new=new).actions == (completed(1, '["w",1,2,"x"]'),)


def test_event_waits_are_served_in_order() -> None:
    def two_waits(ctx: OrchestrationContext, _: None):
        first, second = ctx.wait_for_external_event("E"), ctx.wait_for_external_event("E")
        return (yield when_all([first, second]))

    result = h.replay(
        two_waits, new=[h.started("Two"), h.event_raised("e", "one"), h.event_raised("E", "two")]
    )
    assert result.actions == (completed(0, '["one","two"]'),)


def test_unwaited_events_do_not_wake_the_orchestrator() -> None:
    result = h.replay(
        collector,
        past=[h.started("Collector"), h.task_scheduled(0, "Work")],
        new=[h.event_raised("Unrelated", 1)],
    )
    assert result.actions == () and not result.is_complete


def test_event_data_decodes_into_the_requested_type() -> None:
    @dataclass
    class Answer:
        approved: bool

    def orch(ctx: OrchestrationContext, _: None):
        answer = yield ctx.wait_for_external_event("Answer", data_type=Answer)
        return answer.approved

    result = h.replay(orch, new=[h.started("Typed"), h.event_raised("Answer", {"approved": True})])
    assert result.actions == (completed(0, "true"),)


# --- sub-orchestrations ---


def parent(ctx: OrchestrationContext, _: None):
    doubled = yield ctx.call_sub_orchestrator("Child", input=5)
    try:
        yield ctx.call_sub_orchestrator("Child", input=-1, instance_id="kid", version="2")
    except TaskFailedError as exc:
        return [doubled, exc.details.message, exc.details.error_type]
    return [doubled]


def test_sub_orchestration_gets_a_deterministic_instance_id() -> None:
    result = h.replay(parent, new=[h.started("Parent")])
    assert result.actions == (
        CreateSubOrchestration(id=0, name="Child", instance_id="test-instance:0000", input="5"),
    )


def test_sub_orchestration_result_and_failure_reach_the_parent() -> None:
    past = [h.started("Parent"), h.sub_orch_created(0, "Child"), h.sub_orch_completed(0, 10)]
    second = h.replay(parent, past=past[:2], new=past[2:])
    assert second.actions == (
        CreateSubOrchestration(id=1, name="Child", instance_id="kid", input="-1", version="2"),
    )

    done = h.replay(
        parent,
        past=[*past, h.sub_orch_created(1, "Child", "kid")],
        new=[h.sub_orch_failed(1, "negative input")],
    )
    assert done.actions == (completed(2, '[10,"negative input","builtins.ValueError"]'),)


def test_uncaught_task_failure_fails_the_orchestration_with_the_cause_inside() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity("Flaky")

    result = h.replay(
        orch,
        past=[h.started("Orch"), h.task_scheduled(0, "Flaky")],
        new=[h.task_failed(0, "disk full", error_type="builtins.OSError")],
    )
    completion = result.completion
    assert completion is not None and completion.status is OrchestrationStatus.FAILED
    details = completion.failure_details
    assert details is not None
    assert details.error_type == "durablehub.errors.TaskFailedError"
    assert "activity 'Flaky' (task 0) failed: builtins.OSError: disk full" in details.message
    assert details.inner_failure is not None and details.inner_failure.is_caused_by(OSError)


# --- context properties ---


def test_custom_status_is_reported_and_can_be_cleared() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        ctx.set_custom_status({"stage": 1})
        yield ctx.call_activity("A")
        ctx.set_custom_status(None)

    first = h.replay(orch, new=[h.started("Status")])
    assert first.custom_status == '{"stage":1}'
    done = h.replay(orch, past=[h.started("Status"), h.task_scheduled(0, "A")], new=[h.task_completed(0)])
    assert done.custom_status is None


def test_current_time_comes_from_orchestrator_started_as_naive_utc() -> None:
    seen: list[datetime] = []

    def orch(ctx: OrchestrationContext, _: None):
        seen.append(ctx.current_utc_datetime)
        yield ctx.call_activity("A")
        seen.append(ctx.current_utc_datetime)

    later = T0 + timedelta(minutes=5)
    h.replay(
        orch,
        past=[h.orchestrator_started(), h.started("Clock"), h.task_scheduled(0, "A")],
        new=[h.orchestrator_started(later), h.task_completed(0)],
    )
    assert seen == [T0.replace(tzinfo=None), later.replace(tzinfo=None)]


def test_new_uuid_is_uuid5_over_instance_time_and_counter_and_stable_on_replay() -> None:
    ids: list[str] = []

    def orch(ctx: OrchestrationContext, _: None):
        ids.extend([ctx.new_uuid(), ctx.new_uuid()])
        yield ctx.call_activity("A")
        ids.append(ctx.new_uuid())

    later = datetime(2024, 1, 1, 0, 0, 1, 500, tzinfo=UTC)
    h.replay(
        orch,
        past=[h.orchestrator_started(), h.started("Ids"), h.task_scheduled(0, "A")],
        new=[h.orchestrator_started(later), h.task_completed(0)],
    )
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
    assert ids == [
        str(uuid.uuid5(namespace, "test-instance_2024-01-01T00:00:00.000000Z_0")),
        str(uuid.uuid5(namespace, "test-instance_2024-01-01T00:00:00.000000Z_1")),
        str(uuid.uuid5(namespace, "test-instance_2024-01-01T00:00:01.000500Z_2")),
    ]
    first_run = list(ids)
    ids.clear()
    h.replay(
        orch,
        past=[h.orchestrator_started(), h.started("Ids"), h.task_scheduled(0, "A")],
        new=[h.orchestrator_started(later), h.task_completed(0)],
    )
    assert ids == first_run


def test_is_replaying_is_true_only_for_past_events(caplog: pytest.LogCaptureFixture) -> None:
    flags: list[bool] = []

    def orch(ctx: OrchestrationContext, _: None):
        log = ctx.create_replay_safe_logger(logging.getLogger("tests.orch"))
        for step in range(3):
            flags.append(ctx.is_replaying)
            log.info("step %d", step)
            yield ctx.call_activity("A")

    past = [h.started("Replaying"), h.task_scheduled(0, "A"), h.task_completed(0), h.task_scheduled(1, "A")]
    with caplog.at_level(logging.INFO, logger="tests.orch"):
        h.replay(orch, past=past, new=[h.task_completed(1)])
    assert flags == [True, True, False]
    assert [r.getMessage() for r in caplog.records if r.name == "tests.orch"] == ["step 2"]


def test_identity_properties_come_from_execution_started() -> None:
    seen: dict[str, object] = {}

    def orch(ctx: OrchestrationContext, _: None):
        seen.update(instance_id=ctx.instance_id, parent=ctx.parent_instance_id, version=ctx.version)
        return None

    h.replay(orch, new=[h.started("Who", instance_id="kid", version="1.2", parent_instance_id="mom")])
    assert seen == {"instance_id": "kid", "parent": "mom", "version": "1.2"}


@dataclass
class Order:
    id: int
    items: list[str]


def test_input_is_rebuilt_into_an_annotated_dataclass() -> None:
    def orch(ctx: OrchestrationContext, order: Order):
        assert isinstance(order, Order)
        return order.items[0]

    result = h.replay(orch, new=[h.started("Typed", {"id": 1, "items": ["pen"]})])
    assert result.actions == (completed(0, '"pen"'),)
