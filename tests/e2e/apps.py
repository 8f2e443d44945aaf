"""The App the end-to-end tests run in worker processes: every Durable Functions pattern."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import durablehub as dh

app = dh.App()


# --- activities ---------------------------------------------------------------------------


@app.activity
def say_hello(ctx: dh.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@app.activity(name="Double")
async def double(ctx: dh.ActivityContext, n: int) -> int:
    return n * 2


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.activity
def fail_always(ctx: dh.ActivityContext, message: str) -> None:
    raise ValueError(message)


@app.activity
def record(ctx: dh.ActivityContext, entry: dict[str, str]) -> None:
    """Appends a line to a file, so a test can see what ran and how often."""
    with open(entry["path"], "a", encoding="utf-8") as f:
        f.write(entry["line"] + "\n")


@app.activity
def flaky(ctx: dh.ActivityContext, spec: dict[str, Any]) -> int:
    """Fails until it has been called ``spec['succeed_on']`` times (counted in a file)."""
    path = Path(spec["path"])
    with path.open("a", encoding="utf-8") as f:
        f.write("call\n")
    calls = len(path.read_text().splitlines())
    if calls < spec["succeed_on"]:
        raise ConnectionError(f"attempt {calls} failed")
    return calls


@app.activity
def slow(ctx: dh.ActivityContext, seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


# --- orchestrators ------------------------------------------------------------------------


@app.orchestrator
def hello_cities(ctx: dh.OrchestrationContext, _: None):
    results = []
    for city in ("Tokyo", "Seattle", "London"):
        results.append((yield ctx.call_activity(say_hello, input=city)))
    return results


@app.orchestrator
def fan_out_fan_in(ctx: dh.OrchestrationContext, count: int):
    values = yield dh.when_all([ctx.call_activity("Double", input=i) for i in range(count)])
    return sum(values)


@app.orchestrator
def monitor(ctx: dh.OrchestrationContext, spec: dict[str, int]):
    checks = 0
    while checks < spec["checks"]:
        yield ctx.create_timer(timedelta(seconds=spec["interval"]))
        checks += 1
        ctx.set_custom_status({"checks": checks})
    return checks


@app.orchestrator
def approval(ctx: dh.OrchestrationContext, timeout_seconds: int):
    timer = ctx.create_timer(timedelta(seconds=timeout_seconds))
    event = ctx.wait_for_external_event("Approval")
    winner = yield dh.when_any([event, timer])
    if winner is event:
        return {"approved": event.get_result()}
    return {"approved": None, "timed_out": True}


@app.orchestrator
def approval_cancelling_its_timer(ctx: dh.OrchestrationContext, timeout_seconds: int):
    """Durable Functions' timeout sample, as written there: the timer is cancelled once the event wins."""
    timeout_task = ctx.create_timer(timedelta(seconds=timeout_seconds))
    event = ctx.wait_for_external_event("Approval")
    winner = yield dh.when_any([event, timeout_task])
    if not timeout_task.is_completed:
        timeout_task.cancel()
    approved = event.get_result() if winner is event else None
    return {"approved": approved, "timer_cancelled": timeout_task.is_cancelled}


@app.orchestrator
def book_trip(ctx: dh.OrchestrationContext, spec: dict[str, str]):
    """A saga: book three things; if one fails, undo the ones that succeeded, in reverse."""
    log = spec["path"]
    done: list[str] = []
    try:
        for step in ("flight", "hotel", "car"):
            if step == spec.get("fail_at"):
                yield ctx.call_activity(fail_always, input=f"{step} is sold out")
            yield ctx.call_activity(record, input={"path": log, "line": f"book {step}"})
            done.append(step)
    except dh.TaskFailedError as failure:
        for step in reversed(done):
            yield ctx.call_activity(record, input={"path": log, "line": f"cancel {step}"})
        return {
            "status": "compensated",
            "error": failure.details.message,
            "error_type": failure.details.error_type,
        }
    return {"status": "booked", "steps": done}


@app.orchestrator
def child(ctx: dh.OrchestrationContext, n: int):
    if n < 0:
        raise ValueError(f"negative input {n}")
    return (yield ctx.call_activity("Double", input=n))


@app.orchestrator
def parent(ctx: dh.OrchestrationContext, values: list[int]):
    results = yield dh.when_all(
        [
            ctx.call_sub_orchestrator(child, input=v, instance_id=f"{ctx.instance_id}-child-{i}")
            for i, v in enumerate(values)
        ]
    )
    failures = []
    try:
        yield ctx.call_sub_orchestrator(child, input=-1)
    except dh.TaskFailedError as failure:
        failures.append(failure.details.message)
    return {"results": results, "failures": failures}


@app.orchestrator
def eternal(ctx: dh.OrchestrationContext, state: dict[str, int]):
    yield ctx.create_timer(timedelta(seconds=0))
    count = state["count"] + 1
    if count < state["until"]:
        ctx.continue_as_new({"count": count, "until": state["until"]})
        return None
    return count


@app.orchestrator
def retrying(ctx: dh.OrchestrationContext, spec: dict[str, Any]):
    policy = dh.RetryPolicy(
        first_retry_interval=timedelta(seconds=1),
        max_number_of_attempts=spec["attempts"],
        backoff_coefficient=2.0,
    )
    return (yield ctx.call_activity(flaky, input=spec, retry_policy=policy))


@app.orchestrator
def big_payload(ctx: dh.OrchestrationContext, data: str):
    echoed = yield ctx.call_activity(echo, input=data)
    return echoed + "!"


@app.orchestrator
def status_reporter(ctx: dh.OrchestrationContext, _: None):
    ctx.set_custom_status({"stage": "waiting"})
    value = yield ctx.wait_for_external_event("go")
    ctx.set_custom_status({"stage": "done", "value": value})
    return value


@app.orchestrator
def nondeterministic(ctx: dh.OrchestrationContext, _: None):
    # Wrong on purpose: replay takes another branch than the first run did.
    name = "say_hello" if not ctx.is_replaying else "echo"
    yield ctx.call_activity(name, input="x")
    yield ctx.create_timer(timedelta(seconds=0))
    return "unreachable when replayed cold"


@app.orchestrator
def slow_chain(ctx: dh.OrchestrationContext, spec: dict[str, Any]):
    results = []
    for _ in range(spec["steps"]):
        results.append((yield ctx.call_activity(slow, input=spec["seconds"])))
    return len(results)


@app.orchestrator
def cleanup_job(ctx: dh.OrchestrationContext, spec: dict[str, str]):
    """The seed's singleton: one cleanup at a time."""
    yield ctx.call_activity(record, input={"path": spec["path"], "line": "cleanup"})
    yield ctx.wait_for_external_event("finish")
    return "cleaned"


WORKER_PID = os.getpid()
import tests.e2e.entity_apps  # noqa: E402,F401  (registers the entities on app)
