"""StorageOutage: how a worker reports storage it cannot reach for a while.

When the storage account (or Azurite) goes away, every loop of a worker fails at once and
keeps failing until it is back; the loops back off (the SDK's retries, then the poller) and
resume by themselves. A traceback per failed poll would bury the one line that matters, so
transient failures -- connection refused or reset, timeouts, 5xx, throttling -- are logged
as one warning when the outage begins, a one-line warning per failed step, and one line when
a request succeeds again. Any other error may be a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import time
import weakref

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

_LOG = logging.getLogger("durablehub.worker")
_TRANSIENT_STATUS = frozenset({408, 429})


def is_transient(exc: BaseException) -> bool:
    """True if retrying later may succeed: storage unreachable, slow or overloaded."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return status >= 500 or status in _TRANSIENT_STATUS
    return False


def describe(exc: BaseException) -> str:
    """The exception's type and first line, short enough for one log line."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StorageOutage:
    """Whether storage is failing for this worker right now, and the log lines that say so."""

    def __init__(self, logger: logging.Logger = _LOG) -> None:
        self._log = logger
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, what: str, exc: BaseException) -> None:
        """Log that ``what`` failed: one line if storage is unreachable, else with a traceback."""
        if not is_transient(exc):
            self._log.error("%s", what, exc_info=exc)
            return
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning(
                "storage unreachable (%s); backing off and retrying until it is back", describe(exc)
            )
        self._log.warning("%s: %s", what, describe(exc))

    def succeeded(self) -> None:
        """A request went through: ends an outage, if one was ongoing."""
        if self._since is not None:
            self._log.warning("storage reachable again after %.1f s", time.monotonic() - self._since)
            self._since = None


_BY_HUB: weakref.WeakKeyDictionary[object, StorageOutage] = weakref.WeakKeyDictionary()


def outage_of(hub: object) -> StorageOutage:
    """The outage tracker shared by everything that uses ``hub`` (one per worker)."""
    outage = _BY_HUB.get(hub)
    if outage is None:
        outage = _BY_HUB[hub] = StorageOutage()
    return outage
