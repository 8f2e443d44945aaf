"""StorageOutage: transient failures are one line each, framed by outage begin and end lines."""

from __future__ import annotations

import logging

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from durablehub.runtime.outage import StorageOutage, is_transient, outage_of


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ServiceRequestError("Cannot connect to host 127.0.0.1:1"), True),
        (ServiceResponseError("Server disconnected"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (http_error(500), True),
        (http_error(503), True),
        (http_error(429), True),
        (http_error(408), True),
        (http_error(409), False),
        (http_error(412), False),
        (ResourceNotFoundError("gone"), False),
        (ClientAuthenticationError("refused"), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_an_outage_is_announced_once_and_its_end_reported(caplog: pytest.LogCaptureFixture) -> None:
    outage = StorageOutage()
    caplog.set_level(logging.INFO, logger="durablehub.worker")
    outage.succeeded()  # nothing to end
    assert caplog.records == [] and not outage.ongoing
    down = ServiceRequestError("Cannot connect to host 127.0.0.1:10001\nsecond line")
    outage.failed("receiving from hub-control-00 failed; backing off", down)
    outage.failed("receiving work items failed; backing off", down)
    assert outage.ongoing
    outage.succeeded()
    outage.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("storage unreachable (ServiceRequestError: Cannot connect to host")
    assert messages[1:3] == [
        "receiving from hub-control-00 failed; backing off: ServiceRequestError: "
        "Cannot connect to host 127.0.0.1:10001",
        "receiving work items failed; backing off: ServiceRequestError: "
        "Cannot connect to host 127.0.0.1:10001",
    ]
    assert messages[3].startswith("storage reachable again after ") and len(messages) == 4
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks


def test_other_errors_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    outage = StorageOutage()
    try:
        raise KeyError("missing")
    except KeyError as exc:
        outage.failed("episode of 'x' failed", exc)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None and not outage.ongoing


def test_one_tracker_per_hub() -> None:
    first, second = object.__new__(type("Hub", (), {})), object.__new__(type("Hub", (), {}))
    assert outage_of(first) is outage_of(first) and outage_of(first) is not outage_of(second)
