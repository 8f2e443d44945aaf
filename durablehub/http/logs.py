"""Keep keys out of logs: uvicorn's access log writes the full request path, query included."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_KEY_IN_QUERY = re.compile(r"(?i)([?&]code=)[^&\s\"]*")


def redact(text: str) -> str:
    """``/x?code=secret&a=1`` → ``/x?code=***&a=1``."""
    return _KEY_IN_QUERY.sub(r"\1***", text)


class RedactKeyFilter(logging.Filter):
    """Rewrites the ``code`` query parameter in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_access_log_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Idempotent. Called at startup, after uvicorn has configured its loggers."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactKeyFilter) for f in logger.filters):
        logger.addFilter(RedactKeyFilter())
