"""Workflows for the telemetry tests: an order (activity, failing activity, timer, external
event), an entity, and a fan-out held at a gate file so that its backlog can be observed."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import durablehub as dh

app = dh.App()


@app.activity(name="ProcessPayment")
def process_payment(ctx: dh.ActivityContext, order: dict[str, Any]) -> str:
    return f"receipt for {order['id']}"


@app.activity(name="ShipOrder")
def ship_order(ctx: dh.ActivityContext, order: dict[str, Any]) -> str:
    raise ValueError(f"no address for {order['id']}")


@app.activity(name="Gated")
def gated(ctx: dh.ActivityContext, gate: str) -> int:
    deadline = time.monotonic() + 120  # the test opens the gate; this only bounds a broken test
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1


@app.orchestrator(name="ProcessOrder")
def process_order(ctx: dh.OrchestrationContext, order: dict[str, Any]):
    receipt = yield ctx.call_activity("ProcessPayment", input=order)
    if order.get("approval"):
        yield ctx.create_timer(timedelta(milliseconds=100))
        approved = yield ctx.wait_for_external_event("Approval")
        if not approved:
            yield ctx.call_activity("ShipOrder", input=order)  # fails, and so does the order
    return receipt


@app.orchestrator(name="GatedFanOut")
def gated_fan_out(ctx: dh.OrchestrationContext, spec: dict[str, Any]):
    done = yield dh.when_all([ctx.call_activity("Gated", input=spec["gate"]) for _ in range(spec["count"])])
    return sum(done)


@app.entity(name="Counter")
class Counter(dh.DurableEntity):
    def add(self, amount: int) -> int:
        total = self.get_state(int, 0) + amount
        if total > 100:
            raise ValueError("too much")
        self.set_state(total)
        return total
