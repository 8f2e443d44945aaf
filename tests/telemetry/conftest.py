"""One in-memory span exporter for the process (OpenTelemetry allows one global provider), and
the tracking logger's records of a test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing tests need durablehub[otel]")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from durablehub.telemetry.provider import DurableIdGenerator  # noqa: E402
from durablehub.telemetry.tracking import LOGGER_NAME  # noqa: E402
from tests.telemetry.tracking_records import Records  # noqa: E402

_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return
    provider = TracerProvider(id_generator=DurableIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans this process exports during the test."""
    _install()
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def tracked() -> Iterator[Records]:
    logger = logging.getLogger(LOGGER_NAME)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
