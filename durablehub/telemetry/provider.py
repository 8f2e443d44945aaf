"""A TracerProvider for durablehub's own processes, from the standard ``OTEL_*`` variables.

``durablehub worker``, ``serve``, ``sidecar`` and the CLI call ``configure_tracing``: when the
OpenTelemetry SDK is installed (``pip install 'durablehub[otel]'``) and an exporter is
configured (``OTEL_TRACES_EXPORTER``, or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``), it installs a
global provider that exports over OTLP/HTTP in batches; otherwise it does nothing and tracing
stays a no-op. The service name, resource attributes, sampler and exporter settings are the
SDK's own (``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``...).

An application that embeds durablehub brings its own provider, made the ordinary way:
before durablehub makes its tracer from an SDK ``TracerProvider``, it wraps the provider's id
generator in ``DurableIdGenerator`` (``adopt_provider``), so that spans whose ids the task hub
fixed in advance get them and every other id is the provider's own. ``opentelemetry-instrument``
users may name it instead: ``OTEL_PYTHON_ID_GENERATOR=durablehub`` (an entry point).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from durablehub.telemetry.tracing import PINNED_SPAN_ID

_LOG = logging.getLogger("durablehub.telemetry")

try:
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
except ImportError:  # the SDK is an extra: without it there is nothing to configure
    IdGenerator = object  # type: ignore[misc,assignment]
    RandomIdGenerator = None  # type: ignore[misc,assignment]


class DurableIdGenerator(IdGenerator):
    """Random ids, except for a span durablehub starts with an id the task hub recorded
    (an orchestration span ended by a later episode, an activity's client span)."""

    def __init__(self, fallback: Any = None) -> None:
        if RandomIdGenerator is None:
            raise RuntimeError("DurableIdGenerator needs opentelemetry-sdk: pip install 'durablehub[otel]'")
        self._fallback = fallback or RandomIdGenerator()

    def generate_span_id(self) -> int:
        pinned = PINNED_SPAN_ID.get()
        return pinned if pinned is not None else int(self._fallback.generate_span_id())

    def generate_trace_id(self) -> int:
        return int(self._fallback.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        return bool(getattr(self._fallback, "is_trace_id_random", lambda: False)())


def adopt_provider(provider: Any) -> bool:
    """Give an SDK ``TracerProvider`` durablehub's id generator, wrapping the one it has; True
    if its tracers made from now on give durablehub's spans their fixed ids. Any other
    provider is left alone (durablehub then warns once, at the first span it cannot pin)."""
    generator = getattr(provider, "id_generator", None)
    if RandomIdGenerator is None or not isinstance(generator, IdGenerator):
        return False
    if not isinstance(generator, DurableIdGenerator):
        try:
            provider.id_generator = DurableIdGenerator(fallback=generator)
        except (AttributeError, TypeError):  # a subclass that makes it read-only: left as it is
            _LOG.debug("could not give the tracer provider durablehub's id generator", exc_info=True)
            return False
    return True


def _exporter_configured() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service_name: str = "durablehub") -> bool:
    """Install a global TracerProvider from ``OTEL_*`` when the SDK is installed and an
    exporter is configured; True if one was installed. ``service_name`` is the default for
    ``OTEL_SERVICE_NAME``."""
    if not _exporter_configured():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        _LOG.warning(
            "OTEL_* variables ask for traces but the OpenTelemetry SDK is not installed: "
            "pip install 'durablehub[otel]'"
        )
        return False
    attributes: dict[str, Any] = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes["service.name"] = service_name
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=DurableIdGenerator())
    exporters: list[SpanExporter] = []
    for name in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(","):
        name = name.strip().lower()
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name in ("otlp", "otlp_proto_http"):
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                _LOG.warning("the OTLP/HTTP exporter is not installed: pip install 'durablehub[otel]'")
                continue
            exporters.append(OTLPSpanExporter())
        elif name:
            _LOG.warning("OTEL_TRACES_EXPORTER=%s is not supported by durablehub; use otlp or console", name)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return bool(exporters)


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans a batch processor still holds (before ``os._exit``, which skips atexit)."""
    from opentelemetry import trace

    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        try:
            flush(timeout_millis)
        except Exception:  # an unreachable collector must not keep the process from exiting
            _LOG.debug("could not flush spans", exc_info=True)
