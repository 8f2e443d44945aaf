"""The pure entity batch executor and formats, without storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import durablehub as dh
from durablehub.engine import history as ev
from durablehub.entities.batch import run_entity_batch
from durablehub.entities.messages import (
    LOCK_GRANTED,
    EntityStatus,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    label,
    scheduled_event_name,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CART = dh.EntityInstanceId("ShoppingCart", "k")


class ShoppingCart(dh.DurableEntity):
    def add_item(self, item: str) -> None:
        self.set_state([*self.get_state(list, []), item])

    def get_contents(self) -> list[str]:
        return self.get_state(list, [])

    def explode(self) -> None:
        self.set_state(["half-done"])
        self.signal_entity(dh.EntityInstanceId("other", "x"), "never")
        raise RuntimeError("boom")

    def store_unserializable(self) -> None:
        self.set_state(object())


def counter(ctx: dh.EntityContext, value: Any) -> Any:
    if ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + value)
        ctx.signal_entity(dh.EntityInstanceId("audit", "log"), "note", value)
        ctx.schedule_new_orchestration("celebrate", input=value, instance_id="party")
    return ctx.get_state(int, 0)


def op(
    operation: str,
    input: Any = None,
    *,
    id: str,
    parent: str | None = None,
    signal: bool = True,
    timestamp: datetime | None = None,
    predecessor: datetime | None = None,
    client: str | None = None,
) -> ev.EventRaised:
    request = RequestMessage(
        id=id,
        operation=operation,
        input=json.dumps(input) if input is not None else None,
        is_signal=signal,
        parent_instance_id=parent,
        parent_execution_id="e1" if parent else None,
        timestamp=timestamp or datetime(1, 1, 1, tzinfo=UTC),
        predecessor=predecessor or datetime(1, 1, 1, tzinfo=UTC),
        client_id=client,
    )
    return ev.EventRaised(name="op", input=request.to_json())


def lock(id: str, parent: str, entities: list[dh.EntityInstanceId], position: int = 0) -> ev.EventRaised:
    request = RequestMessage(
        id=id,
        parent_instance_id=parent,
        parent_execution_id="e1",
        lockset=tuple(sorted(entities)),
        position=position,
    )
    return ev.EventRaised(name="op", input=request.to_json())


def release(id: str, parent: str) -> ev.EventRaised:
    return ev.EventRaised(name="release", input=ReleaseMessage(parent_instance_id=parent, id=id).to_json())


def run(
    events: list[ev.HistoryEvent],
    state: SchedulerState | None = None,
    target: Any = ShoppingCart,
    entity=CART,
):
    return run_entity_batch(entity, target, state or SchedulerState(), events, now=NOW)


def responses(result) -> dict[str, ResponseMessage]:  # noqa: ANN001
    return {
        m.event.name: ResponseMessage.from_json(m.event.input)
        for m in result.messages
        if isinstance(m.event, ev.EventRaised) and m.event.name not in ("op", "release")
    }


def test_entity_ids_are_case_insensitive_names_with_keys() -> None:
    assert str(dh.EntityInstanceId("ShoppingCart", "Key-1")) == "@shoppingcart@Key-1"
    assert dh.EntityInstanceId.parse("@Counter@a@b") == dh.EntityInstanceId("counter", "a@b")
    assert dh.EntityInstanceId("A", "x") == dh.EntityInstanceId("a", "x")
    for bad in [("", "k"), ("a@b", "k"), ("a", "k/1")]:
        with pytest.raises(ValueError):
            dh.EntityInstanceId(*bad)
    with pytest.raises(ValueError, match="not an entity instance id"):
        dh.EntityInstanceId.parse("plain-orchestration")


def test_operations_apply_in_order_and_answer_calls() -> None:
    result = run(
        [
            op("AddItem", "apple", id="1"),
            op("add_item", "pear", id="2"),
            op("GetContents", id="3", parent="orch", signal=False),
        ]
    )
    assert json.loads(result.state.state) == ["apple", "pear"] and result.state.exists
    answer = responses(result)["3"]
    assert json.loads(answer.result) == ["apple", "pear"]
    response_message = next(m for m in result.messages if m.event.name == "3")
    assert response_message.target_instance_id == "orch" and response_message.target_execution_id == "e1"
    assert EntityStatus.from_json(result.state.status().to_json()) == EntityStatus(entity_exists=True)


def test_redelivered_requests_are_applied_once() -> None:
    first = run([op("AddItem", "apple", id="1")])
    again = run([op("AddItem", "apple", id="1"), op("AddItem", "fig", id="2")], state=first.state)
    assert json.loads(again.state.state) == ["apple", "fig"] and again.duplicates == 1
    # The state survives its JSON form, de-duplication memory included.
    stored = SchedulerState.from_json(again.state.to_json())
    assert run([op("AddItem", "fig", id="2")], state=stored).state.state == again.state.state


def test_a_failing_operation_changes_nothing_and_fails_only_its_call() -> None:
    start = run([op("AddItem", "apple", id="1")]).state
    result = run(
        [op("explode", id="2", parent="orch", signal=False), op("AddItem", "kiwi", id="3")], state=start
    )
    failure = responses(result)["2"].failure_details
    assert failure is not None and failure.error_type == "builtins.RuntimeError" and failure.message == "boom"
    assert json.loads(result.state.state) == ["apple", "kiwi"]
    assert not any(m.target_instance_id == "@other@x" for m in result.messages)


def test_unknown_operations_non_json_state_and_unknown_entities_are_clear_errors() -> None:
    result = run(
        [
            op("Nope", id="1", parent="o", signal=False),
            op("store_unserializable", id="2", parent="o", signal=False),
        ]
    )
    found = responses(result)
    assert "has no operation 'Nope'" in found["1"].failure_details.message
    assert "add_item" in found["1"].failure_details.message
    assert found["2"].failure_details.error_type == "durablehub.errors.PayloadError"
    assert not result.state.exists
    missing = run(
        [op("x", id="3", parent="o", signal=False)], target=None, entity=dh.EntityInstanceId("ghost", "k")
    )
    assert "no entity named 'ghost' is registered" in responses(missing)["3"].failure_details.message


def test_function_entities_signal_entities_and_start_orchestrations() -> None:
    entity = dh.EntityInstanceId("counter", "c")
    result = run([op("add", 5, id="r1"), op("add", 2, id="r2")], target=counter, entity=entity)
    assert json.loads(result.state.state) == 7
    signals = [m for m in result.messages if m.target_instance_id == "@audit@log"]
    assert [json.loads(RequestMessage.from_json(m.event.input).input) for m in signals] == [5, 2]
    first, second = (RequestMessage.from_json(m.event.input) for m in signals)
    assert second.predecessor == first.timestamp and first.parent_instance_id == "@counter@c"
    starts = [m.event for m in result.messages if isinstance(m.event, ev.ExecutionStarted)]
    assert [s.name for s in starts] == ["celebrate", "celebrate"]
    # Ran again (a crash before the commit), the batch sends the very same ids.
    rerun = run([op("add", 5, id="r1"), op("add", 2, id="r2")], target=counter, entity=entity)
    assert [RequestMessage.from_json(m.event.input).id for m in signals] == [
        RequestMessage.from_json(m.event.input).id
        for m in rerun.messages
        if m.target_instance_id == "@audit@log"
    ]
    assert {s.orchestration_instance.execution_id for s in starts} == {
        m.event.orchestration_instance.execution_id
        for m in rerun.messages
        if isinstance(m.event, ev.ExecutionStarted)
    }


def test_requests_of_one_sender_run_in_order_whatever_order_they_arrive_in() -> None:
    sent: dict[str, datetime] = {}
    labels = [label(sent, str(CART), NOW) for _ in range(3)]
    events = [
        op("AddItem", f"item{i}", id=f"r{i}", client="c1", timestamp=t, predecessor=p)
        for i, (t, p) in enumerate(labels)
    ]
    held = run([events[2], events[0]])
    assert json.loads(held.state.state) == ["item0"]  # item2 waits for item1
    done = run([events[1]], state=SchedulerState.from_json(held.state.to_json()))
    assert json.loads(done.state.state) == ["item0", "item1", "item2"]


def test_locks_are_granted_forwarded_and_released() -> None:
    a, b = dh.EntityInstanceId("account", "a"), dh.EntityInstanceId("account", "b")
    first = run([lock("L1", "orch1", [b, a])], entity=a)
    assert first.state.locked_by == "orch1"
    (forward,) = first.messages
    assert forward.target_instance_id == "@account@b"
    assert RequestMessage.from_json(forward.event.input).position == 1
    # While locked, other senders wait; the holder's calls run.
    busy = run(
        [
            op("AddItem", "x", id="s1"),
            lock("L2", "orch2", [a]),
            op("GetContents", id="c1", parent="orch1", signal=False),
        ],
        state=first.state,
        entity=a,
    )
    assert "c1" in responses(busy) and len(busy.state.queue) == 2 and busy.state.exists is False
    # The release lets the queue run: the signal, then orch2's lock request, granted.
    freed = run([release("L1", "orch1")], state=busy.state, entity=a)
    assert freed.state.locked_by == "orch2" and json.loads(freed.state.state) == ["x"]
    assert responses(freed)["L2"].result == LOCK_GRANTED
    # A duplicate release of the old section does not unlock orch2's.
    assert run([release("L1", "orch1")], state=freed.state, entity=a).state.locked_by == "orch2"


def test_a_lock_request_whose_section_already_ended_is_not_granted() -> None:
    a = dh.EntityInstanceId("account", "a")
    held = run([lock("L1", "orch1", [a])], entity=a).state
    waiting = run([lock("L2", "orch2", [a]), release("L2", "orch2")], state=held, entity=a)
    assert waiting.state.queue == [] and waiting.state.locked_by == "orch1"


def test_signals_not_yet_due_go_back_to_the_queue_until_due() -> None:
    later = NOW + timedelta(days=10)
    request = RequestMessage(
        id="d1", operation="AddItem", input='"late"', is_signal=True, scheduled_time=later
    )
    event = ev.EventRaised(name=scheduled_event_name(later), input=request.to_json())
    result = run([event])
    (again,) = result.messages
    assert again.target_instance_id == str(CART) and again.visible_at == NOW + timedelta(days=6)
    assert not result.state.exists
    due = run_entity_batch(CART, ShoppingCart, SchedulerState(), [event], now=later)
    assert json.loads(due.state.state) == ["late"]


def starter(ctx: dh.EntityContext, value: Any) -> None:
    ctx.set_state("started")
    ctx.schedule_new_orchestration(value["name"], instance_id=value["id"])


@pytest.mark.parametrize(
    ("name", "instance_id", "field"),
    [
        ("celebrate", "../../x\r\nInjected: 1", "instance id"),
        ("celebrate", "..", "instance id"),
        ("cele\r\nbrate", "party", "orchestrator name"),
    ],
)
def test_an_entity_cannot_start_an_orchestration_a_client_could_not(
    name: str, instance_id: str, field: str
) -> None:
    """The checks of a client's and an orchestration's start apply to an entity's: the operation
    fails, its state is unchanged, and nothing is sent."""
    entity = dh.EntityInstanceId("starter", "s")
    result = run(
        [op("go", {"name": name, "id": instance_id}, id="1", parent="o", signal=False)],
        target=starter,
        entity=entity,
    )
    failure = responses(result)["1"].failure_details
    assert failure is not None and failure.error_type == "builtins.ValueError", failure
    assert field in failure.message
    assert not result.state.exists
    assert not any(isinstance(m.event, ev.ExecutionStarted) for m in result.messages)
