"""Client errors → HTTP status codes (python-sdks.md §5), with one JSON shape: ``{"error": ...}``.

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
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def state_error_status(exc: OrchestrationStateError) -> int:
    return 410 if exc.status in FINISHED else 409


def install_error_handlers(app: FastAPI) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc))

    async def wrong_state(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrchestrationStateError)
        return error_response(state_error_status(exc), str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    async def bad_request(_: Request, exc: Exception) -> JSONResponse:
        return error_response(400, str(exc))

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        return error_response(413, str(exc))

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

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, str(exc))  # the server's setup, not the request, is wrong

    async def misconfigured(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, str(exc))

    app.add_exception_handler(OrchestrationNotFoundError, not_found)
    app.add_exception_handler(TaskHubNotFoundError, unavailable)
    app.add_exception_handler(ConfigurationError, misconfigured)
    app.add_exception_handler(OrchestrationStateError, wrong_state)
    app.add_exception_handler(OrchestrationAlreadyExistsError, conflict)
    app.add_exception_handler(PayloadTooLargeError, too_large)
    app.add_exception_handler(PayloadError, bad_request)
    app.add_exception_handler(ValueError, bad_request)  # checked arguments: ids, names, times
    app.add_exception_handler(RequestValidationError, invalid_parameters)
    app.add_exception_handler(HTTPException, http_error)
