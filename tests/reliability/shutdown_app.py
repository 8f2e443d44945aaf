"""The App the shutdown tests run in ``durablehub worker`` processes.

Each activity notes when it starts and ends (with its process id) in the file named by
``DURABLEHUB_SHUTDOWN_LOG``, so a test sees which worker ran what and whether it finished.
"""

from __future__ import annotations

import os
import time

import durablehub as dh

LOG_ENV = "DURABLEHUB_SHUTDOWN_LOG"

app = dh.App()


def _note(ctx: dh.ActivityContext, what: str) -> None:
    line = f"{os.getpid()} {what} {ctx.orchestration_id} {ctx.task_id}\n".encode()
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one short O_APPEND write: atomic across processes
    finally:
        os.close(fd)


@app.activity
def work(ctx: dh.ActivityContext, seconds: float) -> float:
    _note(ctx, "start")
    time.sleep(seconds)
    _note(ctx, "end")
    return seconds


@app.orchestrator
def batch(ctx: dh.OrchestrationContext, width: int):
    first = yield dh.when_all([ctx.call_activity(work, input=1.5) for _ in range(width)])
    last = yield ctx.call_activity(work, input=0.5)
    return sum(first) + last


@app.orchestrator
def stuck(ctx: dh.OrchestrationContext, seconds: float):
    return (yield ctx.call_activity(work, input=seconds))
