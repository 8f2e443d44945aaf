"""How durablehub processes write their logs: text, or one JSON object per line.

``DURABLEHUB_LOG_FORMAT=json`` makes the worker, ``serve``, the sidecar and the CLI write every
record as one JSON object (python-json-logger), the fields of tracking events
(``durablehub.tracking``) as top-level keys, so that jq or a log pipeline can query them. Every
record carries ``trace_id``/``span_id`` when an OpenTelemetry span is current, and has account
keys, SAS signatures and HTTP keys masked before any formatter sees it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from opentelemetry import trace

from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import redact

LOG_FORMAT_SETTING = "DURABLEHUB_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s {tag}%(levelname)s %(name)s: %(message)s"
# Renamed to the names log pipelines expect; every other attribute keeps its LogRecord name.
_JSON_NAMES = {"levelname": "level", "name": "logger"}


def log_format() -> str:
    """``text`` (the default) or ``json``, from ``DURABLEHUB_LOG_FORMAT``.

    Raises:
        ConfigurationError: any other value, named.
    """
    value = os.environ.get(LOG_FORMAT_SETTING, "text").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigurationError(f"{LOG_FORMAT_SETTING} must be 'text' or 'json', got {value!r}")
    return value


def json_logs() -> bool:
    return log_format() == "json"


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as W3C traceparent writes them) when a span is current."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class SecretsFilter(logging.Filter):
    """Masks account keys, SAS signatures and ``code=`` HTTP keys in the formatted message.

    The message is formatted here once (then ``args`` cleared), so a secret passed as an
    argument is masked as well as one written in the message itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        masked = _mask_http_key(redact(message))
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


def _mask_http_key(text: str) -> str:
    if "code=" not in text.lower() and "%63ode=" not in text.lower():
        return text
    try:  # the HTTP extra's parser, which decodes names as the server does
        from durablehub.http.logs import redact as redact_url
    except ImportError:
        return text
    return " ".join(redact_url(word) for word in text.split(" "))


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields=_JSON_NAMES,
        timestamp=True,  # "timestamp": ISO 8601 in UTC, which jq and log stores compare as text
        json_ensure_ascii=False,
    )


def configure_logging(level: str | int = "INFO", *, tag: str = "", stream: Any = None) -> None:
    """Set up the root logger for a durablehub process, replacing any handler it had.

    Raises:
        ConfigurationError: ``DURABLEHUB_LOG_FORMAT`` is neither ``text`` nor ``json``.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_logs():
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT.format(tag=tag)))
    handler.addFilter(SecretsFilter())
    handler.addFilter(TraceContextFilter())
    logging.basicConfig(
        level=level.upper() if isinstance(level, str) else level, handlers=[handler], force=True
    )
    logging.getLogger("azure").setLevel(logging.WARNING)


def announce(message: str, *, err: bool = False) -> None:
    """A status line of a long-running command: printed, or a JSON record in JSON mode."""
    if json_logs():
        logging.getLogger("durablehub.cli").info(message)
    else:
        import typer

        typer.echo(message, err=err)
