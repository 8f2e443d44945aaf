"""Checks every request to the management API passes before any route sees it.

Pure ASGI middlewares, installed by ``create_app`` (so an app that mounts it gets them too):

* ``TrustedHosts`` refuses a Host header nobody configured (see ``hosts``);
* ``LoopbackOnly`` serves only loopback callers when authentication is off;
* ``SameOriginWrites`` refuses state-changing requests a browser sends from another site: a
  form post or a ``no-cors`` fetch needs no credentials of its own, so without this a web page
  could terminate instances on a developer's unauthenticated local server, or through any
  credentials a browser attaches by itself;
* ``ReadOnly`` refuses every state-changing request on a read-only server.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from durablehub.http.errors import error_response
from durablehub.http.hosts import ALLOWED_HOSTS_SETTING, is_loopback, untrusted_host
from durablehub.http.payloads import KEY_HEADER, KEY_QUERY_PARAMETER

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests a page of another site did not make: the same origin, or
# the user (address bar, bookmark).
OWN_FETCHES = frozenset({"same-origin", "none"})
FORM_TYPE = "application/x-www-form-urlencoded"
# What a page of another site may send without a CORS preflight: the types an HTML form sends.
BROWSER_FORM_TYPES = frozenset({FORM_TYPE, "multipart/form-data", "text/plain"})
READ_ONLY_SETTING = "DURABLEHUB_HTTP_READ_ONLY"


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


class LoopbackOnly:
    """With ``DURABLEHUB_HTTP_AUTH=none``: a caller that is not on this machine is refused.

    The client address is the socket's, or the one uvicorn takes from X-Forwarded-For when a
    trusted proxy sends it; a proxy that forwards remote callers without saying so makes them
    look local, which is why ``none`` is for development only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and not is_loopback(str(client[0])):
            message = (
                "authentication is off on this server (DURABLEHUB_HTTP_AUTH=none): it answers loopback "
                "callers only"
            )
            await error_response(403, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SameOriginWrites:
    """POST, PUT, PATCH and DELETE must come from a program or a page of this server's origin.

    A browser marks what a page sends: ``Sec-Fetch-Site`` (other than same-origin or none) and
    an ``Origin`` other than this server's are refused. Browsers that send neither are caught by
    the content type: a page of another site can send only the form types and text/plain
    without asking first (a CORS preflight, which this server never grants), so those are
    refused unless the request carries credentials no browser attaches by itself: a key
    (``x-functions-key``, or ``code=`` on the API's paths) or a bearer token, which the routes
    then check, as ``credentials`` says.
    A browser's session cookie is not such a credential. Other types pass to the routes, which
    take an empty body as no input and read any other as JSON (``routes.json_body``). Under
    ``form_paths`` (the dashboard's own forms) URL-encoded forms are let through to routes that
    check a CSRF token themselves; the Origin checks still apply.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str | None,
        form_paths: tuple[str, ...] = (),
        credentials: RequestCredentials | None = None,
    ) -> None:
        self.app = app
        self.public_host = _netloc(base_url) if base_url else None
        self.form_paths = form_paths
        self.credentials = credentials or RequestCredentials()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            forms = any(route_path(scope).startswith(p) for p in self.form_paths)
            problem = self._problem(dict(scope["headers"]), forms=forms, scope=scope)
            if problem is not None:
                status, message = problem
                await error_response(status, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: dict[bytes, bytes], *, forms: bool, scope: Scope) -> tuple[int, str] | None:
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        if site and site not in OWN_FETCHES:
            return 403, f"cross-site requests cannot change anything here (Sec-Fetch-Site: {site})"
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1").strip()
            own = {self.public_host, headers.get(b"host", b"").decode("latin-1").strip().lower()}
            if _netloc(text) not in own - {None, ""}:
                return 403, f"cross-site requests cannot change anything here (Origin: {text})"
        content_type = headers.get(b"content-type")
        if content_type is not None:
            media_type = content_type.decode("latin-1").split(";")[0].strip().lower()
            if forms and media_type == FORM_TYPE:
                return None
            if media_type in BROWSER_FORM_TYPES and not self.credentials.carried(scope, forms=forms):
                return 400, (
                    f"the request body must be JSON sent as application/json (or no body), got "
                    f"content type {media_type!r}; another content type is read as JSON only from a "
                    f"request that carries the key"
                )
        return None


class RequestCredentials:
    """Whether a request carries credentials that a browser never attaches by itself: with
    ``key``, the ``x-functions-key`` header, or on the API's paths a ``code`` query parameter;
    with ``bearer``, an ``Authorization: Bearer`` header. Only their presence counts here: the
    routes' authentication compares them, and counts wrong keys against the client's limit
    (``attempts``), so a request's content type never tells a right key from a wrong one. A
    cookie never counts, nor Basic credentials (a browser resends those by itself), nor
    ``code=`` on the dashboard's form paths, whose routes read no key from the URL."""

    def __init__(self, *, key: bool = False, bearer: bool = False) -> None:
        self.key = key
        self.bearer = bearer

    def carried(self, scope: Scope, *, forms: bool = False) -> bool:
        headers = dict(scope["headers"])
        if self.bearer:
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return True
        if not self.key:
            return False
        if headers.get(KEY_HEADER.encode(), b"").strip():
            return True  # a custom header: no page of another site can send it unasked
        if forms:
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return any(code.strip() for code in query.get(KEY_QUERY_PARAMETER, []))


class ReadOnly:
    """``DURABLEHUB_HTTP_READ_ONLY``: only GET, HEAD and OPTIONS are answered, but for the
    paths in ``allowed`` (signing in to the dashboard changes nothing in the hub)."""

    def __init__(self, app: ASGIApp, *, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and scope["path"] not in self.allowed
        ):
            message = f"this server is read-only ({READ_ONLY_SETTING}): it changes nothing in the task hub"
            await error_response(403, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The request's path within this app: without the prefix of a mount, which Starlette
    keeps at the start of ``path`` and in ``root_path``."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _netloc(url: str) -> str | None:
    """``https://Orders.example.com:8443/x`` → ``orders.example.com:8443``; None for ``null``."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        return None
    return rest.split("/", 1)[0].lower() or None
