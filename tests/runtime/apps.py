"""Orchestrators and activities the runtime tests run in in-process workers."""

from __future__ import annotations

import time
from typing import Any

import durablehub as dh

app = dh.App()


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.activity
def pause(ctx: dh.ActivityContext, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.orchestrator
def chain(ctx: dh.OrchestrationContext, steps: int):
    total = 0
    for i in range(steps):
        total += yield ctx.call_activity(echo, input=i)
    return total


@app.orchestrator
def slow_chain(ctx: dh.OrchestrationContext, spec: dict[str, float]):
    for _ in range(int(spec["steps"])):
        yield ctx.call_activity(pause, input=spec["seconds"])
    return int(spec["steps"])


@app.orchestrator
def blocks(ctx: dh.OrchestrationContext, seconds: float):
    """Blocks its worker thread in orchestrator code: what the episode deadline is for."""
    yield ctx.call_activity(echo, input="before")
    time.sleep(seconds)
    return "woke up"


@app.orchestrator
def parent_of_blocked(ctx: dh.OrchestrationContext, seconds: float):
    try:
        return (yield ctx.call_sub_orchestrator(blocks, input=seconds))
    except dh.TaskFailedError as failure:
        return {"child failed": failure.details.error_type}
