"""Wrong keys, counted per client: after ``limit`` of them within a minute, every key a client
sends (the API's ``x-functions-key`` / ``code=`` and the dashboard's login form alike) is
answered 429 with ``Retry-After`` until its oldest failure is a minute old.

While a client is held back its keys are not even compared, so a guess that happens to be right
tells it nothing; other clients are not affected. A client is its address (what uvicorn takes
from ``X-Forwarded-For`` when a trusted proxy sends it), an IPv6 address counting by its /64
(one host is usually given a whole /64). Memory is bounded: at most ``MAX_CLIENTS`` clients are
tracked, the one whose last failure is oldest forgotten first. In one process: several server
processes each allow ``limit``.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import HTTPException

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000
LIMIT_SETTING = "DURABLEHUB_HTTP_KEY_FAILURES_PER_MINUTE"


def client_of(address: str | None) -> str:
    """The unit failures are counted by: an IPv4 address, or the /64 of an IPv6 one."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a name (a Unix socket, a test client): counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailedKeyAttempts:
    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError(f"the limit of wrong keys must be at least 1, not {limit}")
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str | None) -> None:
        """Before comparing a client's key.

        Raises:
            HTTPException: 429 with Retry-After while the client has used up its wrong keys.
        """
        wait = self.retry_after(address)
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail=f"too many wrong keys from this client: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def retry_after(self, address: str | None) -> int | None:
        """Whole seconds until the client may send a key again, or None if it may now."""
        client = client_of(address)
        failures = self._failures.get(client)
        if failures is None:
            return None
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str | None) -> None:
        """Count a wrong key from the client."""
        client = client_of(address)
        failures = self._failures.pop(client, None) or deque(maxlen=self.limit)
        failures.append(self._clock())
        self._failures[client] = failures  # last: the most recent failure
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
