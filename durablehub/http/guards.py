"""Checks every request to the management API passes before any route sees it.

Pure ASGI middlewares, installed by ``create_app`` (so an app that mounts it gets them too):
``TrustedHosts`` refuses a Host header nobody configured (see ``hosts``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from durablehub.http.errors import error_response
from durablehub.http.hosts import ALLOWED_HOSTS_SETTING, untrusted_host


class TrustedHosts:
    """As Starlette's TrustedHostMiddleware, with IPv6 hosts and this API's JSON error, which
    names the setting to change."""

    def __init__(self, app: ASGIApp, *, hosts: list[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = untrusted_host(scope["headers"], self.hosts)
            if name is not None:
                message = f"this server does not answer to the host {name!r} ({ALLOWED_HOSTS_SETTING})"
                await error_response(400, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)
