"""The tracing part of scripts/benchmark.py: the cost of traces on W1 (three-activity chains
started at once), in one process (worker and client), first with no OpenTelemetry SDK
configured (the API's no-op: what every user without ``durablehub[otel]`` runs), then with the
SDK, every span sampled and batched to an exporter that drops them (the SDK's own cost, not a
collector's). OpenTelemetry allows one global provider per process, so each side runs in a
process of its own, after a warm-up round. Prints throughput and CPU seconds per orchestration
of the process (worker and client).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import durablehub as dh

app = dh.App()


@app.activity
def step(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.orchestrator
def three_steps(ctx: dh.OrchestrationContext, n: int):
    for i in range(3):
        yield ctx.call_activity(step, input=i)
    return n


def _w1(client: dh.DurableClient, chains: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    ids = [client.schedule_new_orchestration(three_steps, input=i) for i in range(chains)]
    for iid in ids:
        state = client.wait_for_orchestration_completion(iid, timeout=600)
        if state.runtime_status is not dh.OrchestrationStatus.COMPLETED:
            raise SystemExit(f"benchmark instance failed: {state}")
    return chains / (time.perf_counter() - wall), (time.process_time() - cpu) / chains


def _install_sdk() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from durablehub.telemetry.provider import DurableIdGenerator

    class Dropping(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Dropping()
    provider = TracerProvider(id_generator=DurableIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, exporter


def measure(connection_string: str, task_hub: str, side: str, chains: int) -> dict[str, float]:
    """One side in this process: W1 after a warm-up, with the SDK installed first for "on"."""
    provider = exporter = None
    if side == "on":
        provider, exporter = _install_sdk()
    settings = dh.TaskHubSettings(task_hub=task_hub, connection_string=connection_string)
    with dh.Worker(app, settings), dh.DurableClient(settings) as client:
        _w1(client, max(5, chains // 5))
        rate, cpu = _w1(client, chains)
    if provider is not None:
        provider.force_flush()  # count the spans still batched
    return {"rate": rate, "cpu": cpu, "spans": float(exporter.count if exporter else 0)}


def run(settings: dh.TaskHubSettings, *, quick: bool) -> None:
    """Each side in a fresh process (one global provider per process), alternating, so that
    the machine's load falls on both alike; medians over the rounds."""
    chains, rounds = (20, 1) if quick else (100, 3)
    print(f"\ntracing: W1 ({chains} three-activity chains at once), worker and client in one process,")
    print(f"  without and with the OpenTelemetry SDK, alternating, {rounds} round(s)")
    found: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for n in range(rounds):
        for side in ("off", "on"):
            out = subprocess.run(
                [sys.executable, __file__, side, str(chains), f"BenchTracing{side}{n}"],
                env={**os.environ, "BENCH_CONNECTION_STRING": settings.connection_string.get_secret_value()},
                capture_output=True,
                text=True,
                check=True,
            )
            found[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {side: {k: statistics.median(r[k] for r in found[side]) for k in ("rate", "cpu")} for side in found}
    for side, label in (("off", "no SDK (the API's no-op)"), ("on", "SDK, every span sampled")):
        rates = ", ".join(f"{r['rate']:.1f}" for r in found[side])
        print(
            f"  {'W1, ' + label:<44} {med[side]['rate']:>9,.1f} orchestration/s  "
            f"{med[side]['cpu'] * 1000:6.1f} ms CPU each  (rounds: {rates})"
        )
    spans = found["on"][-1]["spans"]
    print(
        f"  {'cost of tracing (medians)':<44} {med['on']['rate'] / med['off']['rate']:>9.0%} of the "
        f"throughput, {(med['on']['cpu'] - med['off']['cpu']) * 1000:+.1f} ms CPU per orchestration "
        f"({spans / (chains + max(5, chains // 5)):.0f} spans each)"
    )


if __name__ == "__main__":
    side, chains, hub = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps(measure(os.environ["BENCH_CONNECTION_STRING"], hub, side, chains)))
