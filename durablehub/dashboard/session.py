"""Who is looking at the dashboard: a browser session for the key, and a CSRF token for forms.

With ``auth=key`` the key is typed once into the login form. The browser then keeps a session
cookie (HttpOnly, so page scripts cannot read it; SameSite=Strict, so other sites' pages do not
send it; Path=/dashboard) whose value is derived from the key by HMAC with an expiry, not the key
itself: a copied cookie is useless after its expiry, and changing the key ends every session.
No server-side state, so several server processes with one key accept each other's sessions.

Forms carry a token equal to a second random cookie (the "double submit" pattern): a page of
another site can make a browser post a form but can neither read nor set that cookie, so it
cannot supply the token. This is on top of the Origin / Sec-Fetch-Site checks every write
passes (``durablehub.http.guards.SameOriginWrites``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from durablehub.http.settings import HttpSettings

SESSION_COOKIE = "durablehub_session"
CSRF_COOKIE = "durablehub_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
_SESSION_PURPOSE = b"durablehub dashboard session v1:"


def _signature(key: str, expires: int) -> str:
    message = _SESSION_PURPOSE + str(expires).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def new_session(key: str, *, now: float | None = None) -> str:
    """A session value for the key: ``<expiry epoch>.<HMAC-SHA256(key, purpose + expiry)>``."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return f"{expires}.{_signature(key, expires)}"


def session_valid(value: str | None, key: str, *, now: float | None = None) -> bool:
    if not value:
        return False
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _signature(key, expires).encode())


def key_matches(supplied: str, settings: HttpSettings) -> bool:
    assert settings.key is not None
    return hmac.compare_digest(supplied.encode(), settings.key.get_secret_value().encode())


def is_signed_in(request: Request, settings: HttpSettings) -> bool:
    """With ``auth=key``: does the request carry a valid session cookie? (Entra ID and ``none``
    are checked by the API's own dependency and middleware.)"""
    if settings.auth != "key":
        return True
    assert settings.key is not None
    return session_valid(request.cookies.get(SESSION_COOKIE), settings.key.get_secret_value())


def cookie_path(request: Request) -> str:
    """The dashboard's path (under a mount's, if any): the cookies go nowhere else."""
    return str(request.scope.get("root_path", "")).rstrip("/") + "/dashboard"


def _secure(request: Request, settings: HttpSettings) -> bool:
    """Cookies only over HTTPS when the browser uses HTTPS: the request says so, or the public
    URL does (a proxy that ends TLS forwards plain HTTP)."""
    return request.url.scheme == "https" or (settings.base_url or "").startswith("https://")


def set_session(response: Response, request: Request, settings: HttpSettings) -> None:
    assert settings.key is not None
    response.set_cookie(
        SESSION_COOKIE,
        new_session(settings.key.get_secret_value()),
        max_age=SESSION_SECONDS,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(request), httponly=True, samesite="strict")


def csrf_token(request: Request) -> tuple[str, bool]:
    """The request's CSRF token, and whether it is new (then ``remember_csrf`` must set it)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing, False
    return secrets.token_urlsafe(32), True


def remember_csrf(response: Response, request: Request, token: str, settings: HttpSettings) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())
