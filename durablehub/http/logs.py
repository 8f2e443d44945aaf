"""Keep keys out of logs: uvicorn's access log writes the full request path, query included, and
its trace log (``--log-level trace``) every ASGI scope, query string included.

The query is split and its names decoded as the server does (Starlette's ``parse_qsl``), so
that ``%63ode=...``, which authenticates like ``code=...``, is redacted too; the rest of the
line is left as it was. Headers never reach these logs (uvicorn's trace shows them as ``<...>``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from durablehub.http.payloads import KEY_QUERY_PARAMETER

REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.asgi")
SECRET_PARAMETERS = frozenset({KEY_QUERY_PARAMETER})
MASK = "***"


def redact_query(query: str) -> str:
    """``a=1&%63ode=secret`` → ``a=1&%63ode=***``: values of secret parameters masked."""
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        secret = equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS
        pairs.append(f"{name}={MASK}" if secret else pair)
    return "&".join(pairs)


def redact(target: str) -> str:
    """A path or URL with the values of its secret query parameters masked."""
    path, question, rest = target.partition("?")
    if not question:
        return target
    query, hash_mark, fragment = rest.partition("#")
    return f"{path}?{redact_query(query)}{hash_mark}{fragment}"


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict) and isinstance(value.get("query_string"), bytes):  # an ASGI scope
        query = value["query_string"].decode("latin-1")
        return {**value, "query_string": redact_query(query).encode("latin-1")}
    return value


class RedactKeyFilter(logging.Filter):
    """Masks secret query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):  # a single mapping argument
            record.args = _redacted(record.args)
        return True


def install_access_log_redaction(logger_names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    """Idempotent. Logger filters survive uvicorn's logging configuration (``dictConfig`` adds
    filters, it never removes them), so installing before the server starts is enough."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeyFilter) for f in logger.filters):
            logger.addFilter(RedactKeyFilter())
