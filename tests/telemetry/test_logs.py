"""The log set-up of durablehub processes (``durablehub.telemetry.logs``), without storage:
JSON lines, the current span's ids on every record, secrets masked, a bad format named."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import DEV_ACCOUNT_KEY
from durablehub.telemetry.logs import LOG_FORMAT_SETTING, configure_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_records_carry_the_current_span(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_SETTING, "json")
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, force=True)
    log = logging.getLogger("durablehub.test")
    log.info("outside")
    tracer = TracerProvider().get_tracer("test")  # not the global provider: the API's current span
    with tracer.start_as_current_span("episode") as span:
        log.info("inside %s", "a span", extra={"instanceId": "i-1"})
    outside, inside = _lines(stream)
    assert "trace_id" not in outside and outside["message"] == "outside" and outside["level"] == "INFO"
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}" and inside["span_id"] == f"{context.span_id:016x}"
    assert inside["message"] == "inside a span" and inside["instanceId"] == "i-1"
    assert inside["logger"] == "durablehub.test" and inside["timestamp"]


@pytest.mark.parametrize("form", ["json", "text"])
def test_secrets_are_masked(root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.setenv(LOG_FORMAT_SETTING, form)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, force=True)
    log = logging.getLogger("durablehub.test")
    log.warning("connecting with %s", f"AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};")
    log.warning("GET /runtime/webhooks/durabletask/instances?code=s3cret&x=1 200")
    log.warning("blob https://a.blob.core.windows.net/c/b?sv=2024&sig=abcdef%3D")
    log.warning('settings "AccountKey=quoted-secret", then GET /x?%63ode=last-secret')
    text = stream.getvalue()
    if form == "json":
        assert len(_lines(stream)) == 4  # still valid JSON after masking
    assert DEV_ACCOUNT_KEY not in text and "s3cret" not in text and "abcdef" not in text
    assert "quoted-secret" not in text and "last-secret" not in text
    assert "AccountKey=***" in text and "code=***&x=1" in text and "sig=***" in text


def test_an_unknown_format_is_named(root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_FORMAT_SETTING, "xml")
    with pytest.raises(ConfigurationError, match="DURABLEHUB_LOG_FORMAT must be 'text' or 'json', got 'xml'"):
        configure_logging("INFO", force=True)


def test_tracking_records_carry_the_span_without_the_cli_log_set_up() -> None:
    """An application with its own logging set-up still gets the ids on tracking records."""
    from durablehub.telemetry.tracking import LOGGER_NAME, FunctionType, Tracker

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("activity") as span:
            Tracker("OrdersHub").emit(
                "FunctionStarting",
                "Started",
                "started",
                instance_id="i",
                function_name="f",
                function_type=FunctionType.ACTIVITY,
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    (record,) = records
    assert vars(record)["trace_id"] == f"{span.get_span_context().trace_id:032x}"
