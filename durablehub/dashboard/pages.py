"""Rendering: the Jinja2 environment, the values every page gets, and the response headers.

Jinja2 (a published package, in the ``http`` extra) renders the pages on the server: no
front-end build, nothing fetched from a CDN, and HTML escaping of every value by default
(``autoescape=True`` for every template, SVG included), so an input holding ``<script>`` is
shown as text. A strict Content-Security-Policy (scripts and styles from this server only, no
inline script) is a second line behind the escaping.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from durablehub.dashboard import session
from durablehub.dashboard.views import duration_text
from durablehub.http.settings import HttpSettings

PREFIX = "/dashboard"
FRAGMENT_HEADER = "x-dashboard-fragment"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold payloads from the hub
}


def base(request: Request) -> str:
    """Where the dashboard is for this request: ``/dashboard``, under the path the management
    app is mounted at (``root_path``), if it is."""
    return str(request.scope.get("root_path", "")).rstrip("/") + PREFIX


def iso(value: datetime | None) -> str:
    """UTC with a Z; the page's script shows it in local time unless UTC is chosen."""
    if value is None:
        return ""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def segment(value: str) -> str:
    """A path segment: ``quote`` with nothing left unescaped."""
    return quote(value, safe="")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("durablehub.dashboard", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["duration"] = duration_text
    env.filters["segment"] = segment
    return env


def render(
    request: Request,
    http: HttpSettings,
    template: str,
    *,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """``template`` with ``values`` and what every page needs (hub, auth, CSRF token, ...)."""
    token, new_token = session.csrf_token(request)
    shared = {
        "prefix": base(request),
        "hub": request.app.state.durablehub.settings.task_hub,
        "auth": http.auth,
        # The server's setting, or an Entra ID token with a read role only.
        "read_only": http.read_only or not getattr(request.state, "may_write", True),
        "signed_in": http.auth == "key" and session.is_signed_in(request, http),
        "csrf_field": session.CSRF_FIELD,
        "csrf": token,
    }
    if clash := shared.keys() & values.keys():
        # A page value named like one of these would silently replace it in base.html (a name
        # filter passed as 'prefix' once made every link and stylesheet of a page dead).
        raise TypeError(f"template values {sorted(clash)} are reserved for every page")
    context = {**shared, "error": None, "notice": None, **values}
    html = environment().get_template(template).render(context)
    response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
    if new_token:
        session.remember_csrf(response, request, token, http)
    return response


def fragment(request: Request) -> str | None:
    """The part of the page the script asks for (a partial refresh), or None for the page."""
    return request.headers.get(FRAGMENT_HEADER) or None
