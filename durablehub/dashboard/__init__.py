"""The web dashboard of ``durablehub serve``, at ``/dashboard``: instances, their history and
timeline, and the management actions, for one task hub.

Front end: pages rendered on the server with Jinja2 (templating with HTML escaping on by
default), the Gantt timeline drawn as SVG on the server, and one small hand-written script and
stylesheet (``static/``) for partial refresh, keyboard shortcuts, light/dark mode and the
local/UTC time toggle. Everything ships inside the package: no Node build, no CDN, no copied
third-party files, and the pages work (less conveniently) without JavaScript. A client-side
framework would need a build step or a vendored bundle for little gain on pages that are
mostly tables.

Needs the ``http`` extra (FastAPI, Jinja2). ``durablehub.http.create_app`` mounts it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from durablehub.dashboard.pages import FRAGMENT_HEADER, PREFIX, base
from durablehub.dashboard.routes import SignInRequired, create_router
from durablehub.dashboard.session import RevokedSessions
from durablehub.http.payloads import KEY_QUERY_PARAMETER
from durablehub.http.settings import HttpSettings

__all__ = ["PREFIX", "install_dashboard"]


def install_dashboard(app: FastAPI, http: HttpSettings) -> None:
    """Add the dashboard's routes to the management app ``app``."""

    async def sign_in(request: Request, _: Exception) -> Response:
        if request.method != "GET" or request.headers.get(FRAGMENT_HEADER):
            # A partial refresh after the session ended: the script reloads into the login page.
            return JSONResponse({"error": "sign in to the dashboard again"}, status_code=401)
        # Back to the page after signing in; a key sent the API's way (?code=) is not carried along.
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != KEY_QUERY_PARAMETER])
        target = request.url.path + (f"?{query}" if query else "")
        return RedirectResponse(f"{base(request)}/login?{urlencode({'next': target})}", status_code=303)

    app.state.dashboard_sessions = RevokedSessions()  # sign-outs in this process
    app.add_exception_handler(SignInRequired, sign_in)
    app.include_router(create_router(http))
