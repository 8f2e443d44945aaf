"""The protobuf ↔ engine translation, both ways, for every history event and action kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("durabletask")

from durabletask.internal import helpers  # noqa: E402

from durablehub.engine import history as ev  # noqa: E402
from durablehub.engine.actions import (  # noqa: E402
    CompleteOrchestration,
    CreateSubOrchestration,
    CreateTimer,
    ScheduleTask,
    SendEvent,
)
from durablehub.models import FailureDetails, OrchestrationStatus  # noqa: E402
from durablehub.sidecar import translate as tr  # noqa: E402
from durablehub.sidecar.protocol import pb  # noqa: E402
from durablehub.state import OrchestrationState  # noqa: E402

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
FIRE = T0 + timedelta(hours=3)
TRACE = {
    "TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "SpanId": "b7ad6b7169203331",
    "TraceState": "congo=t61rcWkgMzE",
}
FAILURE = FailureDetails(
    message="boom",
    error_type="builtins.ValueError",
    stack_trace="Traceback ...",
    inner_failure=FailureDetails(message="root", error_type="builtins.KeyError"),
    is_non_retriable=True,
    properties={"code": 42, "where": ["a", "b"]},
)
PARENT = ev.ParentInstance(
    name="Parent",
    orchestration_instance=ev.OrchestrationInstance(instance_id="p1", execution_id="e-p"),
    task_schedule_id=3,
    version="2.0",
)

# One engine event of every kind, with every field the protocol carries set.
ENGINE_EVENTS: list[ev.HistoryEvent] = [
    ev.ExecutionStarted(
        event_id=-1,
        timestamp=T0,
        orchestration_instance=ev.OrchestrationInstance(instance_id="i1", execution_id="e1"),
        name="Orch",
        version="1.0",
        input='{"x": 1}',
        parent_instance=PARENT,
        tags={"team": "a"},
        parent_trace_context=TRACE,
        scheduled_start_time=FIRE,
    ),
    ev.ExecutionCompleted(
        event_id=7, timestamp=T0, orchestration_status=OrchestrationStatus.FAILED, failure_details=FAILURE
    ),
    ev.ExecutionTerminated(timestamp=T0, input='"stop"', recurse=True),
    ev.TaskScheduled(
        event_id=0,
        timestamp=T0,
        name="Act",
        version="3",
        input="[1]",
        tags={"k": "v"},
        parent_trace_context=TRACE,
    ),
    ev.TaskCompleted(timestamp=T0, task_scheduled_id=0, result='"ok"'),
    ev.TaskFailed(
        timestamp=T0, task_scheduled_id=0, reason="boom", details="Traceback ...", failure_details=FAILURE
    ),
    ev.SubOrchestrationInstanceCreated(
        event_id=1, timestamp=T0, name="Child", instance_id="c1", version="1", input="null", tags={"t": "1"}
    ),
    ev.SubOrchestrationInstanceCompleted(timestamp=T0, task_scheduled_id=1, result="5"),
    ev.SubOrchestrationInstanceFailed(
        timestamp=T0, task_scheduled_id=1, reason="boom", details="Traceback ...", failure_details=FAILURE
    ),
    ev.TimerCreated(event_id=2, timestamp=T0, fire_at=FIRE),
    ev.TimerFired(timestamp=T0, timer_id=2, fire_at=FIRE),
    ev.OrchestratorStarted(timestamp=T0),
    ev.OrchestratorCompleted(timestamp=T0),
    ev.EventSent(event_id=4, timestamp=T0, instance_id="other", name="Ping", input='{"a": null}'),
    ev.EventRaised(timestamp=T0, name="Approval", input="true"),
    ev.ContinueAsNew(event_id=5, timestamp=T0, result='{"n": 2}'),
    ev.GenericEvent(timestamp=T0, data="anything"),
    ev.HistoryState(timestamp=T0),
    ev.ExecutionSuspended(timestamp=T0, reason="maintenance"),
    ev.ExecutionResumed(timestamp=T0, reason="done"),
    ev.ExecutionRewound(
        timestamp=T0, reason="fixed", parent_execution_id="e-p", instance_id="i1", parent_trace_context=TRACE
    ),
]


def test_every_engine_event_kind_is_covered() -> None:
    assert {type(e) for e in ENGINE_EVENTS} == set(ev.EVENT_CLASSES.values())


@pytest.mark.parametrize("event", ENGINE_EVENTS, ids=lambda e: type(e).__name__)
def test_engine_event_round_trips(event: ev.HistoryEvent) -> None:
    message = tr.event_to_proto(event)
    assert message.WhichOneof("eventType") is not None
    assert message.eventId == event.event_id
    again = tr.event_from_proto(pb.HistoryEvent.FromString(message.SerializeToString()))
    assert again == event


# Protocol events as the SDK and its in-memory backend build them (durabletask's helpers).
SDK_EVENTS: list[pb.HistoryEvent] = [
    helpers.new_orchestrator_started_event(T0.replace(tzinfo=None)),
    helpers.new_orchestrator_completed_event(),
    helpers.new_execution_started_event("Orch", "i1", '{"x": 1}', {"team": "a"}),
    helpers.new_timer_created_event(2, FIRE.replace(tzinfo=None)),
    helpers.new_timer_fired_event(2, FIRE.replace(tzinfo=None)),
    helpers.new_task_scheduled_event(0, "Act", "[1]"),
    helpers.new_task_completed_event(0, '"ok"'),
    helpers.new_task_failed_event(0, ValueError("boom")),
    helpers.new_sub_orchestration_created_event(1, "Child", "c1", "null"),
    helpers.new_sub_orchestration_completed_event(1, "5"),
    helpers.new_sub_orchestration_failed_event(1, RuntimeError("child failed")),
    helpers.new_event_raised_event("Approval", "true"),
    helpers.new_suspend_event(encoded_input='"why"'),
    helpers.new_resume_event(encoded_input=None),
    helpers.new_terminated_event(encoded_output='"stop"'),
]


@pytest.mark.parametrize("message", SDK_EVENTS, ids=lambda m: m.WhichOneof("eventType"))
def test_sdk_event_round_trips(message: pb.HistoryEvent) -> None:
    event = tr.event_from_proto(message)
    back = tr.event_to_proto(event)
    if not message.HasField("timestamp"):  # the engine stamps every event
        back.ClearField("timestamp")
    assert back == message


def test_engine_event_kinds_map_onto_distinct_protocol_kinds() -> None:
    kinds = [tr.event_to_proto(e).WhichOneof("eventType") for e in ENGINE_EVENTS]
    assert len(set(kinds)) == len(kinds)


@pytest.mark.parametrize(
    "kind",
    [
        "entityOperationSignaled",
        "entityOperationCalled",
        "entityLockRequested",
        "entityOperationCompleted",
        "entityOperationFailed",
        "entityUnlockSent",
        "entityLockGranted",
    ],
)
def test_event_kinds_not_recorded_are_refused_by_name(kind: str) -> None:
    message = pb.HistoryEvent(eventId=-1)
    getattr(message, kind).SetInParent()
    with pytest.raises(tr.TranslationError, match=kind):
        tr.event_from_proto(message)


def test_a_failure_without_details_reaches_the_sdk_with_its_reason() -> None:
    legacy = ev.TaskFailed(task_scheduled_id=3, reason="it broke", details="at line 1")
    details = tr.event_to_proto(legacy).taskFailed.failureDetails
    assert (details.errorMessage, details.errorType, details.stackTrace.value) == (
        "it broke",
        "Unknown",
        "at line 1",
    )


ENGINE_ACTIONS = [
    ScheduleTask(id=0, name="Act", input='{"a": 1}', version="2", tags={"x": "y"}),
    CreateTimer(id=1, fire_at=FIRE),
    CreateSubOrchestration(id=2, name="Child", instance_id="c1", input="[]", version="1"),
    SendEvent(id=3, instance_id="other", name="Ping", data='"hi"'),
    CompleteOrchestration(id=4, status=OrchestrationStatus.COMPLETED, result='"done"'),
    CompleteOrchestration(id=4, status=OrchestrationStatus.FAILED, failure_details=FAILURE),
    CompleteOrchestration(id=4, status=OrchestrationStatus.TERMINATED, result='"stopped"'),
    CompleteOrchestration(
        id=4,
        status=OrchestrationStatus.CONTINUED_AS_NEW,
        new_input='{"n": 2}',
        new_version="2.0",
        carryover_events=(ev.EventRaised(timestamp=T0, name="Later", input="1"),),
    ),
]


@pytest.mark.parametrize(
    "action", ENGINE_ACTIONS, ids=lambda a: f"{type(a).__name__}-{getattr(a, 'status', '')}"
)
def test_engine_action_round_trips(action: object) -> None:
    message = tr.action_to_proto(action)  # type: ignore[arg-type]
    assert tr.action_from_proto(pb.OrchestratorAction.FromString(message.SerializeToString())) == action


SDK_ACTIONS: list[pb.OrchestratorAction] = [
    helpers.new_schedule_task_action(0, "Act", '{"a": 1}', {"x": "y"}),
    helpers.new_create_timer_action(1, FIRE.replace(tzinfo=None)),
    helpers.new_create_sub_orchestration_action(2, "Child", "c1", "[]", None),
    helpers.new_send_event_action(3, instance_id="other", event_name="Ping", encoded_data='"hi"'),
    helpers.new_complete_orchestration_action(4, pb.ORCHESTRATION_STATUS_COMPLETED, '"done"'),
    helpers.new_complete_orchestration_action(
        -1, pb.ORCHESTRATION_STATUS_FAILED, "", helpers.new_failure_details(ValueError("bad"))
    ),
    helpers.new_complete_orchestration_action(
        5,
        pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
        '{"n": 2}',
        carryover_events=[helpers.new_event_raised_event("Later", "1")],
    ),
]


@pytest.mark.parametrize("message", SDK_ACTIONS, ids=lambda m: m.WhichOneof("orchestratorActionType"))
def test_sdk_action_round_trips(message: pb.OrchestratorAction) -> None:
    action = tr.action_from_proto(message)
    back = tr.action_to_proto(action)
    if message.HasField("completeOrchestration"):  # the SDK leaves their timestamps empty
        for carried in [
            *back.completeOrchestration.carryoverEvents,
            *message.completeOrchestration.carryoverEvents,
        ]:
            carried.ClearField("timestamp")
    assert back == message


def test_the_sdks_continue_as_new_result_is_the_next_input() -> None:
    action = tr.action_from_proto(SDK_ACTIONS[-1])
    assert isinstance(action, CompleteOrchestration)
    assert (action.new_input, action.result) == ('{"n": 2}', None)
    assert [e.name for e in action.carryover_events] == ["Later"]


@pytest.mark.parametrize("kind", ["terminateOrchestration", "sendEntityMessage", "rewindOrchestration"])
def test_actions_not_served_are_refused_by_name(kind: str) -> None:
    message = pb.OrchestratorAction(id=9)
    getattr(message, kind).SetInParent()
    with pytest.raises(tr.TranslationError, match=kind):
        tr.action_from_proto(message)


def test_an_empty_action_is_refused() -> None:
    with pytest.raises(tr.TranslationError, match="without an action"):
        tr.action_from_proto(pb.OrchestratorAction(id=1))


def test_failure_details_round_trip_with_inner_failure_and_properties() -> None:
    again = tr.failure_from_proto(tr.failure_to_proto(FAILURE))  # type: ignore[arg-type]
    assert again == FAILURE
    assert again.properties == FAILURE.properties


@pytest.mark.parametrize("status", list(OrchestrationStatus))
def test_statuses_keep_their_protocol_numbers(status: OrchestrationStatus) -> None:
    name = pb.OrchestrationStatus.Name(tr.status_to_proto(status))
    assert name == f"ORCHESTRATION_STATUS_{status.name}"
    assert tr.status_from_proto(tr.status_to_proto(status)) is status


def test_instance_state_with_and_without_payloads() -> None:
    state = OrchestrationState(
        instance_id="i1",
        name="Orch",
        runtime_status=OrchestrationStatus.FAILED,
        created_at=T0,
        last_updated_at=FIRE,
        serialized_input="1",
        serialized_output=None,
        serialized_custom_status='"half"',
        failure_details=FAILURE,
        execution_id="e1",
        completed_at=FIRE,
        version="1.0",
        tags={"a": "b"},
    )
    full = tr.state_to_proto(state)
    assert (full.instanceId, full.name, full.orchestrationStatus) == (
        "i1",
        "Orch",
        pb.ORCHESTRATION_STATUS_FAILED,
    )
    assert (full.input.value, full.HasField("output"), full.customStatus.value) == ("1", False, '"half"')
    assert tr.to_datetime(full.createdTimestamp) == T0 and tr.to_datetime(full.lastUpdatedTimestamp) == FIRE
    assert tr.failure_from_proto(full.failureDetails) == FAILURE
    assert (full.executionId.value, full.version.value, dict(full.tags)) == ("e1", "1.0", {"a": "b"})
    bare = tr.state_to_proto(state, payloads=False)
    assert not (bare.HasField("input") or bare.HasField("customStatus"))
