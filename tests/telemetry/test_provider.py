"""``configure_tracing``: a provider from the standard OTEL_* variables only when an exporter is
configured (each case in a fresh interpreter: one global provider per process); and a start
that came without a trace gets one from the worker (DTFx's GenerateNewTrace)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from durablehub.engine import history as ev
from durablehub.telemetry import trace_context as tc
from durablehub.telemetry.tracing import starting_execution
from tests.telemetry import spantree as st

PROBE = (
    "from opentelemetry import trace;"
    "from durablehub.telemetry.provider import configure_tracing;"
    "print(configure_tracing('probe'), type(trace.get_tracer_provider()).__name__,"
    " type(getattr(trace.get_tracer_provider(), 'id_generator', None)).__name__,"
    " getattr(getattr(trace.get_tracer_provider(), 'resource', None), 'attributes', {}).get('service.name'))"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, "False"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces",
                "OTEL_SERVICE_NAME": "orders",
            },
            "True TracerProvider DurableIdGenerator orders",
        ),
    ],
)
def test_configure_tracing_from_the_environment(env: dict[str, str], expected: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(expected), out.stdout + out.stderr


def test_a_start_without_a_trace_gets_a_new_one(spans) -> None:
    now = datetime.now(UTC)
    started = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="i", execution_id="e"),
        name="o",
        generate_new_trace=True,
        parent_trace_context={"TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    recorded = starting_execution(started, now=now)
    assert recorded.generate_new_trace is False
    [create] = st.from_sdk(spans.get_finished_spans())
    assert (create.name, create.kind, create.parent_id) == ("create_orchestration:o", "PRODUCER", None)
    own = tc.orchestration_span_of(recorded.parent_trace_context)
    assert own is not None and own.trace_id == create.trace_id  # a trace of its own
    assert tc.parent_of(recorded.parent_trace_context).span_id == create.span_id  # type: ignore[union-attr]
    # Recorded once: the next episode's start is left as it is.
    assert starting_execution(recorded, now=now) is recorded


def test_a_provider_whose_id_generator_cannot_be_replaced_is_left_alone() -> None:
    """A provider subclass may make ``id_generator`` read-only: durablehub then makes its tracer
    as it is (and warns once, at the first span it cannot pin) instead of failing every start."""
    from opentelemetry.sdk.trace import TracerProvider

    from durablehub.telemetry.provider import adopt_provider

    class FrozenIds(TracerProvider):
        @property  # type: ignore[override]
        def id_generator(self) -> object:
            return self.__dict__["_ids"]

        @id_generator.setter
        def id_generator(self, value: object) -> None:
            if "_ids" in self.__dict__:
                raise AttributeError("id_generator is read-only")
            self.__dict__["_ids"] = value

    provider = FrozenIds()
    own = provider.id_generator
    assert adopt_provider(provider) is False
    assert provider.id_generator is own
