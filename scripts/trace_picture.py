"""Draw the trace of the quickstart's order workflow (``ProcessOrder`` of
``durablehub.samples.workflows``) as an SVG waterfall, from the spans durablehub exports.

Starts a private Azurite, runs the workflow with a worker and a client in this process and an
in-memory span exporter, and writes one row per span (indented under its parent, in start
order; bar colour by kind). The README's picture is this script's output:

    .venv/bin/python scripts/trace_picture.py [--out docs/traces/order-workflow.svg]
"""

from __future__ import annotations

import argparse
import tempfile
from html import escape
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from durablehub.samples.workflows import app
from durablehub.telemetry.provider import DurableIdGenerator

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"SERVER": "#2b6cb0", "CLIENT": "#68a0d8", "PRODUCER": "#805ad5", "CONSUMER": "#b794f4"}
INTERNAL = "#38a169"
ROW, LABEL, WIDTH = 24, 430, 1100


def run_workflow() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "quickstart"}), id_generator=DurableIdGenerator()
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with tempfile.TemporaryDirectory() as data, AzuriteProcess(location=data) as azurite:
        settings = dh.TaskHubSettings(task_hub="TracePicture", connection_string=azurite.connection_string)
        with dh.Worker(app, settings), dh.DurableClient(settings) as client:
            iid = client.schedule_new_orchestration(
                "ProcessOrder", input={"id": 42, "amount": 99.5}, instance_id="order-42"
            )
            state = client.wait_for_orchestration_completion(iid, timeout=120)
            if state.runtime_status is not dh.OrchestrationStatus.COMPLETED:
                raise SystemExit(f"the workflow did not complete: {state}")
    provider.force_flush()
    return list(exporter.get_finished_spans())


def ordered(spans: list[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """Depth-first from the root, children in start order."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(s)
    rows: list[tuple[int, ReadableSpan]] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0):
            rows.append((depth, s))
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return rows


def svg(rows: list[tuple[int, ReadableSpan]]) -> str:
    start = min(s.start_time or 0 for _, s in rows)
    end = max(s.end_time or 0 for _, s in rows)
    scale = (WIDTH - LABEL - 90) / max(end - start, 1)
    height = ROW * (len(rows) + 2)
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="8" y="16" font-weight="bold">trace {rows[0][1].context.trace_id:032x} '
        f"({(end - start) / 1e6:,.0f} ms, {len(rows)} spans)</text>",
    ]
    for i, (depth, s) in enumerate(rows):
        y = ROW * (i + 1) + 6
        x = LABEL + ((s.start_time or 0) - start) * scale
        w = max(((s.end_time or 0) - (s.start_time or 0)) * scale, 2)
        kind = s.kind.name
        colour = "#e53e3e" if s.status.status_code.name == "ERROR" else COLOURS.get(kind, INTERNAL)
        ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
        label = escape(f"{'  ' * depth}{s.name} [{kind.lower()}]")
        out.append(f'<text x="8" y="{y + 13}" xml:space="preserve">{label}</text>')
        out.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 8}" fill="{colour}" rx="2"/>'
        )
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 13}" fill="#555">{ms:,.0f} ms</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "traces" / "order-workflow.svg")
    options = parser.parse_args()
    rows = ordered(run_workflow())
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(svg(rows), encoding="utf-8")
    for depth, s in rows:
        print(f"{'  ' * depth}{s.name} [{s.kind.name.lower()}] {s.status.status_code.name.lower()}")
    print(f"wrote {options.out} ({len(rows)} spans)")


if __name__ == "__main__":
    main()
