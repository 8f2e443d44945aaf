"""Telemetry: traces, tracking logs and metrics (OpenTelemetry, optional)."""
