"""Who is looking at the dashboard: a browser session for the key, and a CSRF token for forms.

With ``auth=key`` the key is typed once into the login form. The browser then keeps a session
cookie (HttpOnly, so page scripts cannot read it; SameSite=Strict, so other sites' pages do not
send it; Path=/dashboard) whose value is an expiry and a random session id signed with the key
by HMAC, not the key itself: a copied cookie is useless after its expiry, and changing the key
ends every session. Several server processes with one key accept each other's sessions.

Signing out revokes the session: its id is kept (``RevokedSessions``) until the session would
have expired, so a copy of the cookie no longer works either. That list is the one server-side
state, held by the process that served the sign-out: other processes behind the same balancer
accept the copy until its expiry (changing the key ends it everywhere). It is bounded: only
validly signed sessions enter it, and when ``MAX_REVOKED`` are held every session issued up to
that second is refused (everyone signs in again) rather than one being forgotten.

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
MAX_REVOKED = 10_000
_SESSION_PURPOSE = b"durablehub dashboard session v2:"


def _signature(key: str, expires: int, session_id: str) -> str:
    message = _SESSION_PURPOSE + f"{expires}.{session_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def new_session(key: str, *, now: float | None = None) -> str:
    """A session value for the key: ``<expiry epoch>.<random id>.<HMAC-SHA256(key, expiry, id)>``."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    session_id = secrets.token_urlsafe(16)
    return f"{expires}.{session_id}.{_signature(key, expires, session_id)}"


def _signed(value: str | None, key: str, now: float | None) -> tuple[int, str] | None:
    """The expiry and id of a validly signed, unexpired session value, else None."""
    if not value or value.count(".") != 2:
        return None
    expires_text, session_id, signature = value.split(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not 16 <= len(session_id) <= 64:
        return None
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return None
    if not hmac.compare_digest(signature.encode(), _signature(key, expires, session_id).encode()):
        return None
    return expires, session_id


class RevokedSessions:
    """The sessions signed out of in this process, each until it would have expired."""

    def __init__(self, max_size: int = MAX_REVOKED) -> None:
        self.max_size = max_size
        self._expiries: dict[str, int] = {}
        self._refused_issued_up_to = -1  # after an overflow: every session issued until then is refused

    def revoke(self, value: str | None, key: str, *, now: float | None = None) -> None:
        signed = _signed(value, key, now)
        if signed is None:
            return  # nothing valid to revoke: junk never takes room
        at = int(now if now is not None else time.time())
        self._expiries = {sid: exp for sid, exp in self._expiries.items() if exp >= at}
        if len(self._expiries) >= self.max_size:
            self._expiries.clear()
            self._refused_issued_up_to = at
        expires, session_id = signed
        self._expiries[session_id] = expires

    def revoked(self, expires: int, session_id: str) -> bool:
        # <=: issue times are whole seconds, so one issued in the second of an overflow may
        # have been revoked and cleared in it; it ends too (a sign-in then must be repeated).
        return session_id in self._expiries or expires - SESSION_SECONDS <= self._refused_issued_up_to


def session_valid(
    value: str | None, key: str, *, now: float | None = None, revoked: RevokedSessions | None = None
) -> bool:
    signed = _signed(value, key, now)
    return signed is not None and (revoked is None or not revoked.revoked(*signed))


def key_matches(supplied: str, settings: HttpSettings) -> bool:
    assert settings.key is not None
    return hmac.compare_digest(supplied.encode(), settings.key.get_secret_value().encode())


def is_signed_in(request: Request, settings: HttpSettings) -> bool:
    """With ``auth=key``: does the request carry a valid session cookie? (Entra ID and ``none``
    are checked by the API's own dependency and middleware.)"""
    if settings.auth != "key":
        return True
    assert settings.key is not None
    return session_valid(
        request.cookies.get(SESSION_COOKIE),
        settings.key.get_secret_value(),
        revoked=revoked_sessions(request),
    )


def revoked_sessions(request: Request) -> RevokedSessions:
    """This app's list (``install_dashboard`` puts it on the app's state)."""
    revoked = request.app.state.dashboard_sessions
    assert isinstance(revoked, RevokedSessions)
    return revoked


def sign_out(response: Response, request: Request, settings: HttpSettings) -> None:
    """Revoke the request's session, if it has a valid one, and clear the cookie."""
    if settings.auth == "key" and settings.key is not None:
        revoked_sessions(request).revoke(request.cookies.get(SESSION_COOKIE), settings.key.get_secret_value())
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(request), httponly=True, samesite="strict")


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
