"""Entities of the end-to-end app (registered on ``tests.e2e.apps.app``)."""

from __future__ import annotations

from typing import Any

import durablehub as dh
from tests.e2e.apps import app


@app.entity(name="ShoppingCart")  # the Durable Functions docs' cart: AddItem, RemoveItem, GetContents
class ShoppingCart(dh.DurableEntity):
    def add_item(self, item: str) -> None:
        self.set_state([*self.get_state(list, []), item])

    def remove_item(self, item: str) -> None:
        items = self.get_state(list, [])
        if item in items:
            items.remove(item)
        self.set_state(items)

    def get_contents(self) -> list[str]:
        return self.get_state(list, [])


@app.entity  # function-based, registered as "account"
def account(ctx: dh.EntityContext, amount: Any) -> Any:
    balance = ctx.get_state(int, 0)
    if ctx.operation == "deposit":
        ctx.set_state(balance + amount)
    elif ctx.operation == "withdraw":
        if amount > balance:
            raise ValueError(f"insufficient funds: balance {balance}, withdrawal {amount}")
        ctx.set_state(balance - amount)
    elif ctx.operation == "balance":
        return balance
    elif ctx.operation == "delete":
        ctx.delete_state()
        return None
    else:
        raise ValueError(f"unknown operation {ctx.operation!r}")
    return ctx.get_state(int, 0)


@app.entity(name="Relay")
class Relay(dh.DurableEntity):
    """Forwards to other entities and starts orchestrations (entities talking to the world)."""

    def forward(self, target: dict[str, Any]) -> None:
        self.set_state(self.get_state(int, 0) + 1)
        self.signal_entity(dh.EntityInstanceId("account", target["key"]), "deposit", target["amount"])

    def start(self, instance_id: str) -> str:
        return self.schedule_new_orchestration("deposit_via_entity", input=10, instance_id=instance_id)


@app.orchestrator
def deposit_via_entity(ctx: dh.OrchestrationContext, amount: int):
    balance = yield ctx.call_entity(dh.EntityInstanceId("account", "started-by-relay"), "deposit", amount)
    return balance


@app.orchestrator
def transfer(ctx: dh.OrchestrationContext, order: dict[str, Any]):
    source = dh.EntityInstanceId("account", order["from"])
    target = dh.EntityInstanceId("account", order["to"])
    with (yield ctx.lock_entities([source, target])):
        balance = yield ctx.call_entity(source, "balance")
        if balance < order["amount"]:
            return "insufficient"
        yield ctx.call_entity(source, "withdraw", order["amount"])
        yield ctx.call_entity(target, "deposit", order["amount"])
    return "done"


@app.orchestrator
def withdraw_too_much(ctx: dh.OrchestrationContext, key: str):
    acct = dh.EntityInstanceId("account", key)
    try:
        yield ctx.call_entity(acct, "withdraw", 1_000_000)
    except dh.TaskFailedError as exc:
        caught = {"error_type": exc.details.error_type, "message": exc.details.message}
    else:
        caught = None
    after = yield ctx.call_entity(acct, "deposit", 1)  # the entity still serves calls
    return {"caught": caught, "after": after}


@app.orchestrator
def withdraw_uncaught(ctx: dh.OrchestrationContext, key: str):
    acct = dh.EntityInstanceId("account", key)
    with (yield ctx.lock_entities([acct])):
        yield ctx.call_entity(acct, "withdraw", 1_000_000)  # raises: the orchestration fails, the lock goes


@app.orchestrator
def cart_shopper(ctx: dh.OrchestrationContext, key: str):
    cart = dh.EntityInstanceId("ShoppingCart", key)
    ctx.signal_entity(cart, "AddItem", "apple")
    yield ctx.call_entity(cart, "AddItem", "pear")
    yield ctx.call_entity(cart, "RemoveItem", "apple")
    return (yield ctx.call_entity(cart, "GetContents"))
