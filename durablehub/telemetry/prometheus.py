"""A Prometheus endpoint for a durablehub process (``--metrics-port``): OpenTelemetry's SDK
with its Prometheus reader, served by prometheus_client on its own port (the ``otel`` extra)."""

from __future__ import annotations

from durablehub.errors import ConfigurationError
from durablehub.settings import TaskHubSettings
from durablehub.telemetry.metrics import QueueProbe

INSTALL_HINT = "pip install 'durablehub[otel]'"


def serve_metrics(port: int, host: str, settings: TaskHubSettings) -> QueueProbe:
    """Set the global MeterProvider to one read by Prometheus, serve ``/metrics`` on
    ``host:port``, and observe the queues of ``settings``' hub on each scrape.

    Raises:
        ConfigurationError: the otel extra is not installed (says what to install), or the
            port cannot be listened on.
    """
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from prometheus_client import start_http_server
    except ImportError as exc:
        raise ConfigurationError(
            f"--metrics-port needs the otel extra ({exc.name} is missing): {INSTALL_HINT}"
        ) from None
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    metrics.set_meter_provider(
        MeterProvider(metric_readers=[PrometheusMetricReader()], resource=Resource.create())
    )
    return QueueProbe(settings)
