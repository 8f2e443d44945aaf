"""How durablehub processes write their logs: text, or one JSON object per line.

``DURABLEHUB_LOG_FORMAT=json`` makes the worker, ``serve``, the sidecar and the CLI write every
record as one JSON object (python-json-logger), the fields of tracking events
(``durablehub.tracking``) as top-level keys, so that jq or a log pipeline can query them. Every
record carries ``trace_id``/``span_id`` when an OpenTelemetry span is current; account keys,
SAS signatures and HTTP keys are masked in what is written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

from opentelemetry import trace

from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import redact

LOG_FORMAT_SETTING = "DURABLEHUB_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s {tag}%(levelname)s %(name)s: %(message)s"
_MARK = "_durablehub_handler"
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


# An HTTP key as a query parameter, its name percent-encoded or not (``%63ode=``
# authenticates like ``code=``); the value stops where a query value or a quoted string ends.
_HTTP_KEY = re.compile(r"""(?i)((?:^|[?&\s])(?:c|%63)(?:o|%6f)(?:d|%64)(?:e|%65))=[^&\s"'\\#]+""")


def mask_secrets(text: str) -> str:
    """``text`` with account keys, SAS signatures and ``code=`` HTTP keys masked."""
    return _HTTP_KEY.sub(r"\1=***", redact(text))


# C0, DEL and C1 controls, and the two separators str.splitlines() also breaks lines at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _SHORT_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def escape_controls(text: str) -> str:
    """``text`` with control characters written as Python escapes (CR as ``\\r``): a name, an
    id or an error message then cannot end a log line and start a forged one."""
    return _CONTROL.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """One record is one line starting at column 0, whatever its arguments hold: control
    characters in it are escaped; a traceback or stack keeps its line breaks, but each of its
    lines is indented, so none can pass for a record. Secrets are masked throughout. The record
    itself is left as it was for any other handler."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [escape_controls(mask_secrets(self.formatMessage(record)))]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, self.formatStack(record.stack_info) if record.stack_info else None):
            if block:
                lines += ["  " + escape_controls(mask_secrets(line)) for line in block.split("\n")]
        return "\n".join(lines)


def json_formatter() -> logging.Formatter:
    """One JSON object per record; secrets are masked in each string value before it is
    encoded (masking the encoded line could cut an escaped quote and break the JSON)."""
    from pythonjsonlogger.json import JsonFormatter

    class RedactingJsonFormatter(JsonFormatter):
        def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
            return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in log_data.items()}

    return RedactingJsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields=_JSON_NAMES,
        timestamp=True,  # "timestamp": ISO 8601 in UTC, which jq and log stores compare as text
        json_ensure_ascii=False,
    )


def configure_logging(
    level: str | int = "INFO", *, tag: str = "", stream: Any = None, force: bool = False
) -> None:
    """Set up the root logger for a durablehub process: its handler replaces one installed
    here before (the CLI's first, then the command's); like ``logging.basicConfig``, it leaves
    a root logger that something else configured alone, unless ``force``.

    Raises:
        ConfigurationError: ``DURABLEHUB_LOG_FORMAT`` is neither ``text`` nor ``json``.
    """
    if json_logs():
        formatter = json_formatter()
    else:
        formatter = TextFormatter(TEXT_FORMAT.format(tag=tag))
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    if root.handlers and not ours and not force:
        return
    for handler in root.handlers[:] if force else ours:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(TraceContextFilter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("azure").setLevel(logging.WARNING)


def announce(message: str, *, err: bool = False) -> None:
    """A status line of a long-running command: printed, or a JSON record in JSON mode."""
    if json_logs():
        logging.getLogger("durablehub.cli").info(message)
    else:
        import typer

        typer.echo(message, err=err)
