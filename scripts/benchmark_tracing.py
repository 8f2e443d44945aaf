"""The tracing part of scripts/benchmark.py: the cost of traces on W1 (three-activity chains
started at once), in one process (worker and client), first with no OpenTelemetry SDK
configured (the API's no-op: what every user without ``durablehub[otel]`` runs), then with the
SDK, every span sampled and batched to an exporter that drops them (the SDK's own cost, not a
collector's). OpenTelemetry allows one global provider per process, so "off" runs first; each
side gets a warm-up round. Prints throughput and this process's CPU seconds per orchestration.
"""

from __future__ import annotations

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


def run(settings: dh.TaskHubSettings, *, quick: bool) -> None:
    chains = 20 if quick else 100
    print(f"\ntracing: W1 ({chains} three-activity chains at once), worker and client in this process")
    results: dict[str, tuple[float, float]] = {}
    with dh.Worker(app, settings.model_copy(update={"task_hub": "BenchTracing"})) as worker:
        with dh.DurableClient(worker.settings) as client:
            _w1(client, max(5, chains // 5))  # warm-up
            results["off"] = _w1(client, chains)
            try:
                provider, exporter = _install_sdk()
            except ImportError:
                print("  (the OpenTelemetry SDK is not installed: pip install 'durablehub[otel]')")
                return
            _w1(client, max(5, chains // 5))
            results["on"] = _w1(client, chains)
            provider.force_flush()
    for side, label in (("off", "no SDK (no-op API)"), ("on", "SDK, all spans sampled")):
        rate, cpu = results[side]
        print(f"  {'W1, tracing ' + label:<44} {rate:>9,.1f} orchestration/s  {cpu * 1000:6.1f} ms CPU each")
    (off_rate, off_cpu), (on_rate, on_cpu) = results["off"], results["on"]
    print(
        f"  {'cost of tracing':<44} {on_rate / off_rate:>9.0%} of the throughput, "
        f"{(on_cpu - off_cpu) * 1000:+.1f} ms CPU per orchestration "
        f"({exporter.count} spans exported in all)"
    )
