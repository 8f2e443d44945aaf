"""Orchestrations the management tests operate on; run by an in-process worker."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import durablehub as dh

app = dh.App()

CALLS: Counter[str] = Counter()
BROKEN = threading.Event()  # while set, ``fragile`` fails: a downstream outage to rewind past


@app.activity
def step(ctx: dh.ActivityContext, name: str) -> str:
    CALLS[name] += 1
    return f"{name} done"


@app.activity
def fragile(ctx: dh.ActivityContext, name: str) -> str:
    CALLS[name] += 1
    if BROKEN.is_set():
        raise ConnectionError(f"{name}: downstream unavailable")
    return f"{name} done"


@app.orchestrator
def waits_for_event(ctx: dh.OrchestrationContext, event_name: str):
    data = yield ctx.wait_for_external_event(event_name)
    return {"got": data}


@app.orchestrator
def runs_a_step(ctx: dh.OrchestrationContext, name: str):
    return (yield ctx.call_activity(step, input=name))


@app.orchestrator
def parent_of_waiter(ctx: dh.OrchestrationContext, child_id: str):
    return (yield ctx.call_sub_orchestrator(waits_for_event, input="Never", instance_id=child_id))


@app.orchestrator
def pipeline(ctx: dh.OrchestrationContext, tag: str):
    """Two good steps around a fragile one; a rewind must not run the good ones again."""
    first = yield ctx.call_activity(step, input=f"{tag}-first")
    middle = yield ctx.call_activity(fragile, input=f"{tag}-fragile")
    last = yield ctx.call_activity(step, input=f"{tag}-last")
    return [first, middle, last]


@app.orchestrator
def pipeline_parent(ctx: dh.OrchestrationContext, tag: str):
    before = yield ctx.call_activity(step, input=f"{tag}-parent-step")
    inner = yield ctx.call_sub_orchestrator(pipeline, input=tag, instance_id=f"{ctx.instance_id}-child")
    return {"before": before, "inner": inner}


@app.orchestrator
def echo_input(ctx: dh.OrchestrationContext, value: Any):
    yield ctx.call_activity(step, input="echo")
    return value


@app.entity
def box(ctx: dh.EntityContext, value: Any) -> Any:
    """``put`` stores a value, ``clear`` deletes the state (the entity is then empty)."""
    if ctx.operation == "put":
        ctx.set_state(value)
    elif ctx.operation == "clear":
        ctx.delete_state()
    return ctx.get_state(object, None)
