"""Orchestrators and activities the runtime tests run in in-process workers."""

from __future__ import annotations

import asyncio
import threading
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


@app.entity
def tally(ctx: dh.EntityContext, amount: int) -> int:
    """A counter entity: ``add`` returns the new total."""
    if ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + amount)
    return ctx.get_state(int, 0)


@app.orchestrator
def read_tally(ctx: dh.OrchestrationContext, key: str):
    return (yield ctx.call_entity(dh.EntityInstanceId("tally", key), "add", 0))


# Set by the deadline tests to let user code that blocks on it return (they never hang the run).
RELEASE = threading.Event()


@app.entity
def sticky(ctx: dh.EntityContext, amount: int) -> int:
    """``hang`` blocks in user code until ``RELEASE``; ``add`` adds."""
    if ctx.operation == "hang":
        ctx.set_state(-1000)  # never kept: the operation does not complete
        RELEASE.wait(120)
    elif ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + amount)
    return ctx.get_state(int, 0)


@app.orchestrator
def hang_then_add(ctx: dh.OrchestrationContext, key: str):
    entity = dh.EntityInstanceId("sticky", key)
    try:
        yield ctx.call_entity(entity, "hang", 0)
        outcome = "returned"
    except dh.TaskFailedError as failure:
        outcome = failure.details.error_type
    return {"hang": outcome, "add": (yield ctx.call_entity(entity, "add", 5))}


@app.activity
async def sleeps_async(ctx: dh.ActivityContext, seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@app.activity
def blocks_sync(ctx: dh.ActivityContext, _: Any) -> str:
    RELEASE.wait(120)
    return "released"


@app.orchestrator
def stuck_activities(ctx: dh.OrchestrationContext, _: Any):
    outcomes = []
    for name in ("sleeps_async", "blocks_sync"):
        try:
            outcomes.append((yield ctx.call_activity(name, input=3600)))
        except dh.TaskFailedError as failure:
            outcomes.append(failure.details.error_type)
    outcomes.append((yield ctx.call_activity(echo, input="still running activities")))
    return outcomes


BLOCK_REPLAY = threading.Event()  # set by a test: the orchestrator below then blocks in replay


@app.activity
def always_fails(ctx: dh.ActivityContext, _: Any) -> None:
    raise ValueError("boom")


@app.orchestrator
def blocks_when_rewound(ctx: dh.OrchestrationContext, _: Any):
    if BLOCK_REPLAY.is_set():
        RELEASE.wait(120)
    yield ctx.call_activity(always_fails)


@app.orchestrator
def collect(ctx: dh.OrchestrationContext, seen: list[int]):
    """One event per generation; the rest are carried over (save_events), in the order raised."""
    value = yield ctx.wait_for_external_event("item")
    seen = [*seen, value]
    if len(seen) < 5:
        ctx.continue_as_new(seen, save_events=True)
        return None
    return seen


@app.orchestrator
def waits_for_event(ctx: dh.OrchestrationContext, _: Any = None):
    return (yield ctx.wait_for_external_event("go"))
