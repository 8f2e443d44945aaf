"""Workflows of the tracing tests: activities (one failing and retried), a sub-orchestration,
a timer, an external event, an entity call, continue-as-new."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import durablehub as dh

app = dh.App()


@app.activity
def charge(ctx: dh.ActivityContext, order: dict[str, Any]) -> str:
    from opentelemetry import trace

    span = trace.get_current_span().get_span_context()  # the activity's server span, in its thread
    return f"charged {order['id']} in span {span.span_id:016x}"


@app.activity
async def ship(ctx: dh.ActivityContext, order: dict[str, Any]) -> str:
    from opentelemetry import trace

    span = trace.get_current_span().get_span_context()
    return f"shipped {order['id']} in span {span.span_id:016x}"


@app.activity
def flaky(ctx: dh.ActivityContext, spec: dict[str, Any]) -> int:
    """Fails on its first call (counted in a file), then succeeds."""
    path = Path(spec["path"])
    with path.open("a", encoding="utf-8") as f:
        f.write("call\n")
    calls = len(path.read_text().splitlines())
    if calls < 2:
        raise ConnectionError(f"attempt {calls} failed")
    return calls


@app.activity
def pause(ctx: dh.ActivityContext, spec: dict[str, Any]) -> str:
    """Blocks until a file exists (so a test can kill its worker while it runs)."""
    import os
    import time

    Path(spec["started"]).write_text(str(os.getpid()))
    while not Path(spec["go"]).exists():
        time.sleep(0.05)
    return "resumed"


@app.entity
def counter(ctx: dh.EntityContext, amount: int) -> int:
    if ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + amount)
    return ctx.get_state(int, 0)


@app.orchestrator
def payment(ctx: dh.OrchestrationContext, order: dict[str, Any]):
    flaky_result = yield ctx.call_activity(
        "flaky",
        input={"path": order["flaky_path"]},
        retry_policy=dh.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3),
    )
    receipt = yield ctx.call_activity("charge", input=order)
    return {"receipt": receipt, "flaky": flaky_result}


@app.orchestrator
def order_workflow(ctx: dh.OrchestrationContext, order: dict[str, Any]):
    paid = yield ctx.call_sub_orchestrator("payment", input=order, instance_id=f"{ctx.instance_id}-payment")
    if order.get("pause"):
        yield ctx.call_activity("pause", input=order["pause"])
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    approved = yield ctx.wait_for_external_event("Approval")
    total = yield ctx.call_entity(dh.EntityInstanceId("counter", "orders"), "add", 1)
    shipped = yield ctx.call_activity("ship", input=order)
    return {"paid": paid, "approved": approved, "total": total, "shipped": shipped}


@app.orchestrator
def looping(ctx: dh.OrchestrationContext, n: int):
    yield ctx.call_activity("charge", input={"id": n})
    if n < 2:
        ctx.continue_as_new(n + 1)
        return None
    return n


@app.orchestrator
def entity_caller(ctx: dh.OrchestrationContext, key: str):
    """Signals and calls an entity, then replays both while an activity and a second call run."""
    entity = dh.EntityInstanceId("counter", key)
    ctx.signal_entity(entity, "add", 2)
    total = yield ctx.call_entity(entity, "add", 1)
    yield ctx.call_activity("charge", input={"id": key})
    again = yield ctx.call_entity(entity, "get")
    return [total, again]


@app.orchestrator
def periodic(ctx: dh.OrchestrationContext, n: int):
    """Each generation after the first in a trace of its own (DTFx's StartNewTrace)."""
    yield ctx.call_activity("charge", input={"id": n})
    if n < 1:
        ctx.continue_as_new(n + 1, new_trace=True)
        return None
    return n
