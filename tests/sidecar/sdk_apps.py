"""Orchestrators and activities written for the unmodified durabletask SDK, for tests that
run SDK workers in their own processes: ``python -m tests.sidecar.sdk_apps ADDRESS``.

With ``BLOCK_MARKER`` set, the process's activities write that file and then hang (a worker
that will be killed mid-activity)."""

from __future__ import annotations

import os
import pathlib
import sys
import threading

from durabletask import task, worker


def step(ctx: task.ActivityContext, n: int) -> int:
    marker = os.environ.get("BLOCK_MARKER")
    if marker:
        pathlib.Path(marker).touch()
        threading.Event().wait()  # until SIGKILL
    return 10 * n


def fan_out(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_activity(step, input=i) for i in range(count)])
    return sum(results)


def register(w: worker.TaskHubGrpcWorker) -> worker.TaskHubGrpcWorker:
    w.add_orchestrator(fan_out)
    w.add_activity(step)
    return w


def main(address: str) -> None:
    w = register(worker.TaskHubGrpcWorker(host_address=address))
    w.start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
