"""A program that sets up OpenTelemetry the ordinary way and runs a durablehub worker and client:
run as ``python -m tests.telemetry.otel_setups SETUP CONNECTION_STRING HUB PARTITIONS``, it
prints the spans it exported as JSON lines on stdout; its log (WARNING and up) goes to stderr.

SETUP is how the program makes its provider, as OpenTelemetry's guides and vendors do:

- ``before``: ``TracerProvider(resource=...)`` with a ``BatchSpanProcessor``, set with
  ``trace.set_tracer_provider`` before durablehub is imported;
- ``after``: the same, after durablehub is imported (and a client made);
- ``vendor``: a one-call setup such as Azure Monitor's ``configure_azure_monitor()``, emulated:
  a function that builds a provider with a sampler, its own id generator and a batch
  processor, and sets it (exporting to memory: nothing leaves the machine).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

VENDOR_SPAN_PREFIX = 0xABCD  # the vendor's span ids start with these 16 bits

EXPORTER = InMemorySpanExporter()


class VendorIdGenerator(IdGenerator):
    """A vendor's own ids (as AWS X-Ray's generator has its own): recognisable span ids."""

    def generate_span_id(self) -> int:
        return (VENDOR_SPAN_PREFIX << 48) | random.getrandbits(48)

    def generate_trace_id(self) -> int:
        return random.getrandbits(128) or 1


def ordinary_setup() -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(BatchSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    return provider


def configure_vendor_monitor() -> TracerProvider:
    """What a vendor's one-call setup does: its own provider, sampler and ids, set globally."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "cloud.provider": "azure"}),
        sampler=ParentBased(ALWAYS_ON),
        id_generator=VendorIdGenerator(),
    )
    provider.add_span_processor(BatchSpanProcessor(EXPORTER, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    return provider


def main(setup: str, connection_string: str, hub_name: str, partitions: int) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    provider = ordinary_setup() if setup == "before" else None

    import durablehub as dh
    from durablehub.client import DurableClient
    from durablehub.runtime.options import WorkerOptions
    from durablehub.settings import TaskHubSettings

    settings = TaskHubSettings(
        task_hub=hub_name, connection_string=connection_string, partition_count=partitions
    )
    client = DurableClient(settings)
    if setup == "after":
        provider = ordinary_setup()
    elif setup == "vendor":
        provider = configure_vendor_monitor()
    assert provider is not None, setup

    app = dh.App()

    @app.activity
    def add_one(ctx: dh.ActivityContext, value: int) -> int:
        return value + 1

    @app.orchestrator
    def chain(ctx: dh.OrchestrationContext, value: int) -> Any:
        value = yield ctx.call_activity(add_one, input=value)
        return (yield ctx.call_activity(add_one, input=value))

    with dh.Worker(app, settings, options=WorkerOptions(max_poll_interval_seconds=0.2)), client:
        with trace.get_tracer("shop").start_as_current_span("POST /orders"):
            iid = client.schedule_new_orchestration(chain, input=1)
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.serialized_output == "3", state
    provider.force_flush()
    for span in EXPORTER.get_finished_spans():
        print(
            json.dumps(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{span.context.trace_id:032x}",
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
                    "status": span.status.status_code.name,
                }
            )
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
