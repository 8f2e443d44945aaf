"""Entity calls, signals and critical sections in the replay engine (no storage)."""

from __future__ import annotations

import json

import pytest

import durablehub as dh
from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration, SendEvent
from durablehub.entities.messages import LOCK_GRANTED, ReleaseMessage, RequestMessage, ResponseMessage
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.testing import history as h

A = dh.EntityInstanceId("account", "a")
B = dh.EntityInstanceId("account", "b")


def sent(action: SendEvent) -> ev.EventSent:
    return h.event_sent(action.id, action.instance_id, action.name, json.loads(action.data or "null"))


def response(request_id: str, message: ResponseMessage) -> ev.EventRaised:
    return ev.EventRaised(name=request_id, input=message.to_json())


def caller(ctx: dh.OrchestrationContext, _: None):
    ctx.signal_entity(A, "deposit", 5)
    try:
        balance = yield ctx.call_entity(A, "withdraw", 100)
    except dh.TaskFailedError as exc:
        balance = exc.details.message
    return balance


def test_calls_are_recorded_as_event_sent_and_answered_by_the_request_id() -> None:
    start = [h.orchestrator_started(), h.started("caller")]
    first = h.replay(caller, new=start)
    signal, call = first.actions
    assert isinstance(signal, SendEvent) and isinstance(call, SendEvent)
    assert (signal.instance_id, signal.name, call.name) == ("@account@a", "op", "op")
    request = RequestMessage.from_json(call.data)
    assert (request.operation, request.is_signal, json.loads(request.input)) == ("withdraw", False, 100)
    assert request.parent_instance_id == "test-instance" and RequestMessage.from_json(signal.data).is_signal
    assert RequestMessage.from_json(call.data).predecessor == RequestMessage.from_json(signal.data).timestamp
    # The same history gives the same request ids (they name no clock), so re-sent requests are recognised.
    assert h.replay(caller, new=start).actions == first.actions
    failure = FailureDetails(message="insufficient funds", error_type="builtins.ValueError")
    past = [*start, sent(signal), sent(call), h.orchestrator_completed()]
    done = h.replay(
        caller,
        past=past,
        new=[h.orchestrator_started(), response(request.id, ResponseMessage(failure_details=failure))],
    )
    (completion,) = done.actions
    assert (
        isinstance(completion, CompleteOrchestration) and completion.status is OrchestrationStatus.COMPLETED
    )
    assert json.loads(completion.result) == "insufficient funds"
    ok = h.replay(
        caller, past=past, new=[h.orchestrator_started(), response(request.id, ResponseMessage(result="42"))]
    )
    assert json.loads(ok.actions[0].result) == 42


def transfer(ctx: dh.OrchestrationContext, _: None):
    with (yield ctx.lock_entities([B, A, B])):
        yield ctx.call_entity(A, "withdraw", 1)
        yield ctx.call_entity(B, "deposit", 1)
    return "done"


def test_critical_sections_lock_in_sorted_order_and_release_on_exit() -> None:
    start = [h.orchestrator_started(), h.started("transfer")]
    (acquire,) = h.replay(transfer, new=start).actions
    request = RequestMessage.from_json(acquire.data)
    assert acquire.instance_id == "@account@a" and request.lockset == (A, B)
    history = [*start, sent(acquire), h.orchestrator_completed(), h.orchestrator_started()]
    result = h.replay(
        transfer,
        past=history[:-1],
        new=[history[-1], response(request.id, ResponseMessage(result=LOCK_GRANTED))],
    )
    (withdraw,) = result.actions
    history += [
        response(request.id, ResponseMessage(result=LOCK_GRANTED)),
        sent(withdraw),
        h.orchestrator_completed(),
    ]
    withdraw_id = RequestMessage.from_json(withdraw.data).id
    (deposit,) = h.replay(
        transfer,
        past=history,
        new=[h.orchestrator_started(), response(withdraw_id, ResponseMessage(result="0"))],
    ).actions
    history += [
        h.orchestrator_started(),
        response(withdraw_id, ResponseMessage(result="0")),
        sent(deposit),
        h.orchestrator_completed(),
    ]
    deposit_id = RequestMessage.from_json(deposit.data).id
    end = h.replay(
        transfer,
        past=history,
        new=[h.orchestrator_started(), response(deposit_id, ResponseMessage(result="1"))],
    )
    *releases, completion = end.actions
    assert [(r.instance_id, r.name) for r in releases] == [
        ("@account@a", "release"),
        ("@account@b", "release"),
    ]
    assert ReleaseMessage.from_json(releases[0].data).id == request.id
    assert completion.status is OrchestrationStatus.COMPLETED


def calls_outside_its_locks(ctx: dh.OrchestrationContext, _: None):
    with (yield ctx.lock_entities([A])):
        yield ctx.call_entity(B, "deposit", 1)


def fails_inside(ctx: dh.OrchestrationContext, _: None):
    yield ctx.lock_entities([A])
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("orchestrator", "message"),
    [(calls_outside_its_locks, "not one of the locked entities"), (fails_inside, "boom")],
)
def test_an_orchestration_that_fails_in_a_critical_section_releases_its_locks(orchestrator, message) -> None:  # noqa: ANN001
    start = [h.orchestrator_started(), h.started("o")]
    (acquire,) = h.replay(orchestrator, new=start).actions
    request = RequestMessage.from_json(acquire.data)
    past = [*start, sent(acquire), h.orchestrator_completed()]
    result = h.replay(
        orchestrator,
        past=past,
        new=[h.orchestrator_started(), response(request.id, ResponseMessage(result=LOCK_GRANTED))],
    )
    *releases, completion = result.actions
    assert [(r.instance_id, r.name) for r in releases] == [("@account@a", "release")]
    assert completion.status is OrchestrationStatus.FAILED and message in completion.failure_details.message


def test_signalling_a_locked_entity_or_nesting_sections_is_refused() -> None:
    def signals_locked(ctx: dh.OrchestrationContext, _: None):
        with (yield ctx.lock_entities([A])):
            ctx.signal_entity(A, "deposit", 1)

    start = [h.orchestrator_started(), h.started("o")]
    (acquire,) = h.replay(signals_locked, new=start).actions
    rid = RequestMessage.from_json(acquire.data).id
    past = [*start, sent(acquire), h.orchestrator_completed()]
    result = h.replay(
        signals_locked,
        past=past,
        new=[h.orchestrator_started(), response(rid, ResponseMessage(result=LOCK_GRANTED))],
    )
    assert "locked by this critical section" in result.actions[-1].failure_details.message
