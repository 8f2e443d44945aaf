"""Transient storage errors are retried with backoff; conflicts and the last failure are not."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ServiceResponseError

from durablehub.runtime.retries import abandon_delay, is_transient, retry_transient


def _status(code: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {code}")
    error.status_code = code
    return error


def test_timeouts_and_server_errors_are_transient_conflicts_are_not() -> None:
    assert is_transient(ServiceResponseError("read timed out"))
    assert all(is_transient(_status(code)) for code in (408, 429, 500, 503))
    assert not any(is_transient(_status(code)) for code in (400, 404, 409, 412))
    assert not is_transient(ResourceModifiedError("etag moved"))
    assert not is_transient(ValueError("a bug"))


def test_a_transient_error_is_retried_until_it_succeeds() -> None:
    failures = [ServiceResponseError("lost"), _status(503)]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert asyncio.run(retry_transient(flaky, what="test", first_delay=0.001)) == "done"


def test_a_conflict_is_raised_at_once_and_the_last_transient_error_after_the_attempts() -> None:
    calls: list[int] = []

    async def conflict() -> None:
        calls.append(1)
        raise _status(412)

    with pytest.raises(HttpResponseError):
        asyncio.run(retry_transient(conflict, what="test", first_delay=0.001))
    assert len(calls) == 1

    async def down() -> None:
        calls.append(1)
        raise _status(500)

    with pytest.raises(HttpResponseError):
        asyncio.run(retry_transient(down, what="test", attempts=3, first_delay=0.001))
    assert len(calls) == 1 + 3


def test_failed_episodes_back_off_exponentially_up_to_a_cap() -> None:
    assert [abandon_delay(1, n) for n in (0, 1, 2, 3, 4, 6, 50)] == [1, 1, 2, 4, 8, 30, 30]
    assert abandon_delay(0, 9) == 0
