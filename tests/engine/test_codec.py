"""The JSON payload codec."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

import pydantic
import pytest

from durablehub.engine import codec
from durablehub.engine.codec import JSON_CODEC, is_structured_type
from durablehub.errors import PayloadError
from durablehub.task import OrchestrationContext
from durablehub.testing import history as h


@dataclass
class Line:
    sku: str
    quantity: int


@dataclass
class Order:
    id: int
    lines: list[Line]
    note: str | None = None


class Customer(pydantic.BaseModel):
    name: str
    since: datetime


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (1, "1"),
        (1.5, "1.5"),
        (True, "true"),
        ("héllo", '"héllo"'),
        ([1, "a", None], '[1,"a",null]'),
        ((1, 2), "[1,2]"),
        ({"a": {"b": [1]}}, '{"a":{"b":[1]}}'),
        (Color.RED, "1"),
    ],
)
def test_plain_json_values(value: object, text: str | None) -> None:
    assert codec.encode(value) == text


def test_dataclasses_encode_as_objects_and_decode_back() -> None:
    order = Order(id=7, lines=[Line(sku="pen", quantity=2)])
    text = codec.encode(order)
    assert text == '{"id":7,"lines":[{"sku":"pen","quantity":2}],"note":null}'
    assert codec.decode(text, Order) == order
    assert codec.decode(text) == {"id": 7, "lines": [{"sku": "pen", "quantity": 2}], "note": None}


def test_pydantic_models_use_their_json_dump_and_validate_back() -> None:
    customer = Customer(name="Ada", since=datetime(2024, 1, 1, tzinfo=UTC))
    text = codec.encode(customer)
    assert text == '{"name":"Ada","since":"2024-01-01T00:00:00Z"}'
    assert codec.decode(text, Customer) == customer
    assert codec.decode(f"[{text}]", list[Customer]) == [customer]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "value of type set at $"),
        ({"items": [1, object()]}, "value of type object at $.items[1]"),
        (
            {"when": datetime(2024, 1, 1)},
            "value of type datetime.datetime at $.when (convert it to an ISO string",
        ),
        ({1: "a"}, "key 1 of type int at $ (JSON object keys must be strings)"),
        (float("nan"), "nan at $ (JSON has no NaN/Infinity)"),
        (Order(id=1, lines=[Line(sku="x", quantity={3})]), "value of type set at $.lines[0].quantity"),  # type: ignore[arg-type]
    ],
)
def test_values_json_cannot_hold_are_refused_with_their_place(value: object, fragment: str) -> None:
    with pytest.raises(PayloadError, match="^input of activity 'X' is not JSON-serializable") as caught:
        codec.encode(value, what="input of activity 'X'")
    assert fragment in str(caught.value)


def test_decoding_errors_name_the_payload() -> None:
    with pytest.raises(PayloadError, match="result of activity 'A' is not valid JSON"):
        codec.decode("{nope", what="result of activity 'A'")
    with pytest.raises(PayloadError, match="does not fit tests.engine.test_codec.Order"):
        codec.decode('{"id": "x"}', Order)
    assert codec.decode(None, Order) is None and codec.decode("") is None
    assert codec.decode("5", object) == 5


def test_structured_types() -> None:
    assert is_structured_type(Order) and is_structured_type(Customer)
    assert (
        not is_structured_type(dict) and not is_structured_type(None) and not is_structured_type(list[Order])
    )


def test_a_call_with_an_unserializable_input_fails_where_the_code_made_it() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        try:
            ctx.call_activity("Charge", input={"card": {1, 2}})
        except PayloadError as exc:
            return str(exc)

    result = h.replay(orch, new=[h.started("Orch")])
    completion = result.completion
    assert completion is not None and completion.result is not None
    assert JSON_CODEC.decode(completion.result).startswith(
        "input of activity 'Charge' is not JSON-serializable: value of type set at $.card"
    )
    assert completion.id == 0  # the failed call took no sequence id


def test_other_payload_sources_are_named() -> None:
    def orch(ctx: OrchestrationContext, _: None):
        messages = []
        for call in (
            lambda: ctx.set_custom_status({1}),
            lambda: ctx.send_event("i", "E", data={1}),
            lambda: ctx.continue_as_new({1}),
            lambda: ctx.call_sub_orchestrator("Child", input={1}),
        ):
            try:
                call()
            except PayloadError as exc:
                messages.append(str(exc).split(" is not")[0])
        return messages

    completion = h.replay(orch, new=[h.started("Orch")]).completion
    assert completion is not None and completion.result is not None
    assert JSON_CODEC.decode(completion.result) == [
        "custom status",
        "data of event 'E'",
        "input of continue_as_new",
        "input of sub-orchestration 'Child'",
    ]


def test_json_text_is_stored_as_it_is() -> None:
    from durablehub.engine.codec import JsonText

    text = '{"b": 1,  "a": [1, 2]}'
    assert JSON_CODEC.encode(JsonText(text)) == text
    assert JSON_CODEC.encode(JsonText("blob:v1:container:a/b")) == "blob:v1:container:a/b"
    assert JSON_CODEC.encode({"b": 1, "a": [1, 2]}) == '{"b":1,"a":[1,2]}'  # a value is written compact
