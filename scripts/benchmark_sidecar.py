"""The sidecar part of scripts/benchmark.py: the same workloads through Microsoft's Durable Task
SDK, beside durablehub's own worker, in one run.

W1 (three-activity chains started at once), W2 (a fan-out/fan-in) and W3 (events to one
waiting instance) run twice: once on a ``durablehub worker`` process with durablehub's client,
once on ``durablehub sidecar`` with an unmodified durabletask-python ``TaskHubGrpcWorker`` and
``TaskHubGrpcClient`` (in this process, over loopback gRPC). Both count every storage request
from Azurite's access log, so the two paths are compared on throughput and on requests per unit.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import benchmark_system as system

import durablehub as dh
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.request_log import AzuriteRequestLog


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sidecar_process(settings: dh.TaskHubSettings) -> Iterator[str]:
    """``durablehub sidecar`` on a free loopback port; yields its address."""
    port = _free_port()
    with TaskHub(settings) as hub:
        hub.create()
    env = {
        **os.environ,
        "AzureWebJobsStorage": settings.connection_string.get_secret_value(),  # type: ignore[union-attr]
        "DURABLEHUB_TASK_HUB": settings.task_hub,
        "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "durablehub", "sidecar", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    system.WORKER_PIDS[:] = [proc.pid]
    try:
        deadline = time.monotonic() + 60
        while True:
            with closing(socket.socket()) as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the sidecar did not start")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        system.WORKER_PIDS.clear()


def sdk_app() -> tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]]:
    """The benchmark's orchestrators and activities, written for durabletask-python."""
    from durabletask import task

    def noop(ctx: task.ActivityContext, value: Any) -> Any:
        return value

    def chain(ctx: task.OrchestrationContext, steps: int):  # type: ignore[no-untyped-def]
        for i in range(steps):
            yield ctx.call_activity(noop, input=i)
        return steps

    def fan_out(ctx: task.OrchestrationContext, count: int):  # type: ignore[no-untyped-def]
        results = yield task.when_all([ctx.call_activity(noop, input=i) for i in range(count)])
        return len(results)

    def collect_events(ctx: task.OrchestrationContext, count: int):  # type: ignore[no-untyped-def]
        total = 0
        for _ in range(count):
            total += yield ctx.wait_for_external_event("tick")
        return total

    return {"chain": chain, "fan_out": fan_out, "collect_events": collect_events}, {"noop": noop}


def run(settings: dh.TaskHubSettings, log_path: Any, *, quick: bool) -> None:
    from durabletask import client as sdk_client
    from durabletask import worker as sdk_worker

    log = AzuriteRequestLog(log_path, settings.names)
    fan, chains, events = (100, 20, 50) if quick else (500, 100, 200)
    rates: dict[str, dict[str, float]] = {}

    print("\nthe same workloads: a durablehub worker, then durabletask-python on `durablehub sidecar`")
    native = settings.model_copy(update={"task_hub": "BenchNative"})
    with system.worker_processes(native), dh.DurableClient(native) as client:
        rates["durablehub"] = _workloads(
            log,
            "durablehub worker",
            fan,
            chains,
            events,
            start=lambda name, value: client.schedule_new_orchestration(name, input=value),
            wait=lambda iid: client.wait_for_orchestration_completion(iid, timeout=900).runtime_status.name,
            raise_event=lambda iid: client.raise_orchestration_event(iid, "tick", data=1),
        )
    remote = settings.model_copy(update={"task_hub": "BenchSidecar"})
    with sidecar_process(remote) as address:
        orchestrators, activities = sdk_app()
        # The SDK logs a line per work item at INFO, on a logger of its own unless given one.
        quiet = logging.getLogger("benchmark.durabletask")
        quiet.setLevel(logging.WARNING)
        w = sdk_worker.TaskHubGrpcWorker(host_address=address, logger=quiet)
        for fn in orchestrators.values():
            w.add_orchestrator(fn)
        for fn in activities.values():
            w.add_activity(fn)
        w.start()
        try:
            c = sdk_client.TaskHubGrpcClient(host_address=address, logger=quiet)
            rates["sidecar"] = _workloads(
                log,
                "durabletask-python on the sidecar",
                fan,
                chains,
                events,
                start=lambda name, value: c.schedule_new_orchestration(orchestrators[name], input=value),
                wait=lambda iid: c.wait_for_orchestration_completion(iid, timeout=900).runtime_status.name,
                raise_event=lambda iid: c.raise_orchestration_event(iid, "tick", data=1),
            )
        finally:
            w.stop()
    for scenario, rate in rates["sidecar"].items():
        ratio = rate / rates["durablehub"][scenario] if rates["durablehub"][scenario] else 0.0
        print(f"  sidecar / durablehub worker, {scenario:<36} {ratio:>6.0%} of the throughput")


def _workloads(
    log: AzuriteRequestLog,
    label: str,
    fan: int,
    chains: int,
    events: int,
    *,
    start: Callable[[str, Any], str],
    wait: Callable[[str], str],
    raise_event: Callable[[str], None],
) -> dict[str, float]:
    def wait_all(ids: list[str]) -> None:
        for iid in ids:
            status = wait(iid)
            if status != "COMPLETED":
                raise SystemExit(f"benchmark instance {iid} ended {status}")

    def w1() -> None:
        wait_all([start("chain", 3) for _ in range(chains)])

    def w2() -> None:
        wait_all([start("fan_out", fan)])

    def w3() -> None:
        target = start("collect_events", events)
        time.sleep(0.5)  # started, so that the events are not raised before its first episode
        for _ in range(events):
            raise_event(target)
        wait_all([target])

    print(f"  {label}:")
    results: dict[str, float] = {}
    for scenario, unit, count, fn in (
        (f"W1: {chains} three-activity chains", "orchestration", chains, w1),
        (f"W2: fan-out/fan-in of {fan}", "activity", fan, w2),
        (f"W3: {events} events to one instance", "event", events, w3),
    ):
        results[scenario.split(":")[0]] = system.measure(log, scenario, unit, count, fn)
    return results
