"""Benchmark: durablehub on one local Azurite, in one run. Prints figures, asserts nothing.

Scenarios (spec issue 3): the raw queue round-trip rate from this process (the ceiling), a
sequential chain (latency per step), a fan-out/fan-in of 500 activities, 100 three-activity
chains started at once, 200 events raised to one waiting instance, and one orchestration that
grows to 10,000 history events (cost per round must stay flat: O(N) overall, not O(N^2)).
Beside every throughput: storage requests per unit (from the request counter) and the peak
memory of this process, which hosts the worker. Machines are shared and noisy: read ratios.

    .venv/bin/python scripts/benchmark.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from datetime import timedelta
from typing import Any

import benchmark_sidecar  # scripts/ is on sys.path when this script runs
import benchmark_system
import benchmark_tracing

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from durablehub.engine import history as ev
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub

app = dh.App()


@app.activity
def noop(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.orchestrator
def chain(ctx: dh.OrchestrationContext, steps: int):
    for i in range(steps):
        yield ctx.call_activity(noop, input=i)
    return steps


@app.orchestrator
def fan_out(ctx: dh.OrchestrationContext, count: int):
    results = yield dh.when_all([ctx.call_activity(noop, input=i) for i in range(count)])
    return len(results)


@app.orchestrator
def collect_events(ctx: dh.OrchestrationContext, count: int):
    total = 0
    for _ in range(count):
        total += yield ctx.wait_for_external_event("tick")
    return total


@app.orchestrator
def long_history(ctx: dh.OrchestrationContext, spec: dict[str, int]):
    for _ in range(spec["rounds"]):
        yield dh.when_all([ctx.call_activity(noop, input=None) for _ in range(spec["width"])])
    return spec["rounds"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Bench:
    def __init__(self, settings: dh.TaskHubSettings, worker: dh.Worker, client: dh.DurableClient) -> None:
        self.settings, self.worker, self.client = settings, worker, client
        self.rows: list[tuple[str, str, str, str]] = []

    def measure(self, label: str, unit: str, count: int, run: Any) -> float:
        before = self.worker.counter.total + self.client_requests()
        by_operation = self.worker.counter.snapshot()
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        requests = self.worker.counter.total + self.client_requests() - before
        worker_ops = {
            op: n - by_operation.get(op, 0)
            for op, n in self.worker.counter.snapshot().items()
            if n > by_operation.get(op, 0)
        }
        rate = count / elapsed
        self.rows.append(
            (
                label,
                f"{rate:,.1f} {unit}/s",
                f"{requests / count:.2f} req/{unit}",
                f"{elapsed:.2f} s, peak {peak_mb():.0f} MB",
            )
        )
        print(
            f"  {label:<44} {rate:>9,.1f} {unit}/s  {requests / count:6.2f} requests/{unit}"
            f"  ({elapsed:.2f} s)"
        )
        top = sorted(worker_ops.items(), key=lambda kv: -kv[1])[:6]
        print(f"  {'':<44} worker: " + ", ".join(f"{op} {n / count:.2f}" for op, n in top))
        return rate

    def client_requests(self) -> int:
        return self.client._hub.counter.total  # noqa: SLF001 - the benchmark reads the client's meter

    def wait(self, ids: list[str], timeout: float = 600) -> list[dh.OrchestrationState]:
        states = [self.client.wait_for_orchestration_completion(i, timeout=timeout) for i in ids]
        bad = [s for s in states if s.runtime_status != dh.OrchestrationStatus.COMPLETED]
        if bad:
            raise SystemExit(f"benchmark instance failed: {bad[0]}")
        return states


async def queue_round_trips(settings: dh.TaskHubSettings, count: int) -> float:
    async with AsyncTaskHub(settings) as hub:
        queue = hub.poison
        await queue.create()
        message = envelope.MessageData(
            task_message=envelope.TaskMessage(
                event=ev.EventRaised(name="x", input="1"),
                orchestration_instance=ev.OrchestrationInstance(instance_id="b"),
            )
        )
        started = time.perf_counter()
        for _ in range(count):
            await queue.send(message)
            [got] = await queue.receive(max_messages=1, visibility_timeout=timedelta(seconds=30))
            await queue.delete_message(got)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--part",
        choices=["all", "process", "system", "latency", "purge", "sidecar", "tracing"],
        default="all",
        help="in-process figures, whole-system (latency: only its fan-out, chains, latency and idle"
        " cost with the default polling, and both ends of the polling trade-off; purge: only its"
        " purge throughput), the sidecar beside a"
        " worker, the cost of tracing (runs last: it installs an OpenTelemetry SDK in this process), or all",
    )
    args = parser.parse_args()
    q = args.quick
    fan, chains, events, steps = (100, 20, 50, 20) if q else (500, 100, 200, 50)
    rounds, width = (10, 50) if q else (30, 166)  # 30 x 166 x 2 ≈ 10,000 history events

    with tempfile.TemporaryDirectory() as data, AzuriteProcess(location=data) as azurite:
        settings = dh.TaskHubSettings(task_hub="Bench", connection_string=azurite.connection_string)
        print(f"durablehub benchmark on Azurite 3.37.0 ({'quick' if q else 'full'} sizes)\n")
        ceiling = asyncio.run(queue_round_trips(settings, 100 if q else 300))
        print(
            f"  {'queue send+receive+delete round trip':<44} {ceiling:>9,.1f} trips/s"
            "  (one process, sequential)"
        )
        if args.part in ("all", "system", "latency"):
            assert azurite.log_path is not None
            benchmark_system.run(
                settings.model_copy(update={"task_hub": "BenchSystem"}),
                azurite.log_path,
                quick=q,
                latency_only=args.part == "latency",
            )
        if args.part == "purge":
            assert azurite.log_path is not None
            benchmark_system.run_purge(
                settings.model_copy(update={"task_hub": "BenchPurge"}),
                azurite.log_path,
                quick=q,
                ceiling=ceiling,
                azurite_pid=azurite.pid,
            )
            return
        if args.part in ("all", "sidecar"):
            assert azurite.log_path is not None
            benchmark_sidecar.run(settings, azurite.log_path, quick=q)
        if args.part == "tracing":
            benchmark_tracing.run(settings, quick=q)
        if args.part in ("system", "latency", "sidecar", "tracing"):
            return
        print("\nin process: worker and client in this process, requests from their own counters")
        with dh.Worker(app, settings) as worker, dh.DurableClient(settings) as client:
            bench = Bench(settings, worker, client)

            iid = client.schedule_new_orchestration(chain, input=steps)
            bench.wait([iid])
            history = client.get_orchestration_history(iid)
            scheduled = [e.timestamp for e in history if isinstance(e, ev.TaskScheduled)]
            gaps = [(b - a).total_seconds() * 1000 for a, b in zip(scheduled, scheduled[1:], strict=False)]
            print(
                f"  {'sequential chain: step latency (median)':<44} {statistics.median(gaps):>9.1f} ms      "
                f"(p90 {statistics.quantiles(gaps, n=10)[-1]:.1f} ms over {len(gaps)} steps)"
            )

            rate = bench.measure(
                f"fan-out/fan-in of {fan} activities",
                "activity",
                fan,
                lambda: bench.wait([client.schedule_new_orchestration(fan_out, input=fan)]),
            )
            print(f"  {'':<44} {rate / ceiling:>9.0%} of the round-trip ceiling")

            def start_chains() -> None:
                bench.wait([client.schedule_new_orchestration(chain, input=3) for _ in range(chains)])

            bench.measure(f"{chains} three-activity chains at once", "orchestration", chains, start_chains)

            def raise_events() -> None:
                target = client.schedule_new_orchestration(collect_events, input=events)
                for _ in range(events):
                    client.raise_orchestration_event(target, "tick", data=1)
                bench.wait([target])

            bench.measure(f"{events} events to one instance", "event", events, raise_events)

            target = client.schedule_new_orchestration(long_history, input={"rounds": rounds, "width": width})
            started = time.perf_counter()
            bench.wait([target], timeout=1800)
            elapsed = time.perf_counter() - started
            history = client.get_orchestration_history(target)
            completed = [e.timestamp for e in history if isinstance(e, ev.OrchestratorStarted)]
            print(
                f"  {'long history: events':<44} {len(history):>9,}         ({elapsed:.1f} s, "
                f"{len(history) / elapsed:,.0f} events/s, {worker.episodes_run} episodes in total)"
            )
            third = max(1, len(completed) // 3)
            early = (completed[third] - completed[0]).total_seconds()
            late = (completed[-1] - completed[-1 - third]).total_seconds()
            print(
                f"  {'long history: last third / first third time':<44} {late / early if early else 0:>9.2f}"
                "          (about 1 means O(N) overall)"
            )
            print(
                f"\npeak memory of this process (client + worker): {peak_mb():.0f} MB; "
                f"storage requests by operation: {dict(sorted(worker.counter.snapshot().items()))}"
            )
        if args.part == "all":
            benchmark_tracing.run(settings, quick=q)


if __name__ == "__main__":
    main()
