"""Transient storage errors: which they are, and retrying them with backoff.

The SDK's own retry policy (``retry_total``, 3 by default) already retries most of them; what
reaches the runtime is what the SDK gave up on, or all of them with ``retry_total=0``. Steps
that are safe to repeat (a response sent twice is dropped as a duplicate, a delete of a gone
message is no error) are retried here a few times, quickly, with jittered exponential backoff;
anything else -- conflicts (409/412: another worker's write) and the last failure -- is
raised to the caller, which abandons the episode so that its messages come back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

_LOG = logging.getLogger("durablehub.worker")
_T = TypeVar("_T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_ABANDON_DELAY_SECONDS = 30


def is_transient(exc: BaseException) -> bool:
    """A timeout, a refused connection, or a status the service asks to retry."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STATUS


async def retry_transient(
    operation: Callable[[], Awaitable[_T]],
    *,
    what: str,
    attempts: int = 4,
    first_delay: float = 0.2,
    max_delay: float = 2.0,
) -> _T:
    """Run ``operation``; on a transient error wait (0.2 s, 0.4 s, ... jittered) and run it again."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            _LOG.info("%s failed (%s: %s); retrying", what, type(exc).__name__, str(exc).split("\n")[0])
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


def abandon_delay(base_seconds: int, dequeue_count: int) -> int:
    """How long messages of a failed episode stay hidden: doubling with each redelivery, so a
    failing instance is not retried in a hot loop (the reference backs off the same way)."""
    if base_seconds <= 0:
        return 0
    return min(base_seconds * 2 ** min(max(dequeue_count - 1, 0), 5), MAX_ABANDON_DELAY_SECONDS)
