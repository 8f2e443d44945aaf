"""Client errors → HTTP status codes (python-sdks.md §5), with one JSON shape: ``{"error": ...}``.

A 400 also carries the message as ``Message`` and ``ExceptionMessage``, the members of the
Functions host's error bodies that Durable Functions' own clients read (azure-functions-durable
1.x raises ``ExceptionMessage`` when a start is refused).

OrchestrationNotFoundError → 404; OrchestrationStateError → 410 Gone when the instance has
finished (Completed, Failed, Terminated, Canceled), 409 Conflict otherwise; a taken instance
id → 409; a payload, id or parameter that cannot be used → 400, one over the hub's
``max_payload_bytes`` → 413; a hub that does not exist → 503.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from durablehub.errors import (
    ConfigurationError,
    OrchestrationAlreadyExistsError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
    PayloadError,
    PayloadTooLargeError,
    TaskHubNotFoundError,
)
from durablehub.models import OrchestrationStatus

FINISHED = frozenset(s.table_name for s in OrchestrationStatus if s.is_terminal)


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message}
    if status_code == 400:
        body |= {"Message": message, "ExceptionMessage": message}
    return JSONResponse(body, status_code=status_code, headers=headers)


def state_error_status(exc: OrchestrationStateError) -> int:
    return 410 if exc.status in FINISHED else 409


# The client errors the API (and the dashboard) turn into status codes; the first match counts.
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (OrchestrationNotFoundError, 404),
    (TaskHubNotFoundError, 503),  # the server's setup, not the request, is wrong
    (ConfigurationError, 500),
    (OrchestrationAlreadyExistsError, 409),
    (PayloadTooLargeError, 413),
    (PayloadError, 400),
    (ValueError, 400),  # checked arguments: ids, names, times
)


def error_status(exc: Exception) -> int | None:
    """The status code of a client error, or None for an error that is not the caller's."""
    if isinstance(exc, OrchestrationStateError):
        return state_error_status(exc)
    return next((status for kind, status in _STATUS_OF if isinstance(exc, kind)), None)


HANDLED_ERRORS: tuple[type[Exception], ...] = (OrchestrationStateError, *(kind for kind, _ in _STATUS_OF))


def install_error_handlers(app: FastAPI) -> None:
    async def client_error(_: Request, exc: Exception) -> JSONResponse:
        status = error_status(exc)
        assert status is not None
        return error_response(status, str(exc))

    async def invalid_parameters(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's default is a 422 echoing the input; DF answers 400, and echoes nothing.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return error_response(400, f"invalid request: {problems}")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    for kind in HANDLED_ERRORS:
        app.add_exception_handler(kind, client_error)
    app.add_exception_handler(RequestValidationError, invalid_parameters)
    app.add_exception_handler(HTTPException, http_error)
