"""What the dashboard's handlers share: reading a form, checking its CSRF token, JSON fields,
and client errors shown as a page with the API's status code and message."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from durablehub.dashboard import session
from durablehub.dashboard.pages import SECURITY_HEADERS, render
from durablehub.http.context import ManagementContext
from durablehub.http.errors import HANDLED_ERRORS, error_status
from durablehub.http.guards import FORM_TYPE

MAX_FORM_FIELD = 1_000_000  # characters; the body itself is bounded by the HTTP limit
MAX_FORM_FIELDS = 200  # a requeue form lists at most 32 messages


class Form:
    """A URL-encoded form: ``get`` the last value of a field, ``all`` of its values."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[-1][:MAX_FORM_FIELD] if values else default

    def all(self, name: str) -> list[str]:
        return [v[:MAX_FORM_FIELD] for v in self._fields.get(name, [])]


async def read_form(request: Request) -> Form:
    """The request's form (empty without a body).

    Raises:
        ValueError: another content type, or too many fields.
    """
    body = await request.body()
    if not body:
        return Form({})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise ValueError(f"the dashboard's forms are sent as {FORM_TYPE}, not {media_type or 'nothing'!r}")
    text = body.decode("utf-8", errors="replace")
    return Form(parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))


def json_field(text: str, what: str) -> Any:
    """A JSON text from a form; empty means null.

    Raises:
        ValueError: not JSON, with the parser's reason.
    """
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None


def context(request: Request) -> ManagementContext:
    return request.app.state.durablehub


def now() -> datetime:
    return datetime.now(UTC)


def forged(request: Request, form: Form) -> Response | None:
    """A 403 page when the form's CSRF token does not match its cookie, else None."""
    if session.csrf_ok(request, form.get(session.CSRF_FIELD) or None):
        return None
    return render(
        request,
        context(request).http,
        "error.html",
        status_code=403,
        error="the form has expired or came from another site: reload the page and try again",
    )


def error_page(request: Request, exc: Exception) -> Response:
    status = error_status(exc) or 500
    return render(request, context(request).http, "error.html", status_code=status, error=str(exc))


def download(text: str | None, name: str) -> Response:
    """A stored JSON text as a file (``null`` when absent), named after ``name``'s safe letters."""
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] + ".json"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text if text is not None else "null", media_type="application/json", headers=headers)


def html_errors(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Client errors (and unusable forms) as a page with the API's status code and message."""

    @functools.wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(request, *args, **kwargs)
        except HANDLED_ERRORS as exc:
            return error_page(request, exc)

    return wrapper
