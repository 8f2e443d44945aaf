"""Who may call the management API: a key (as Functions' system key) or an Entra ID token
with a configured role or scope (``principal``). Wrong keys are rate-limited per client
(``attempts``).

Each mode is a FastAPI dependency built from ``HttpSettings``; declaring it through FastAPI's
security classes also puts the scheme in the OpenAPI description. Failures are 401 (403 for a
valid token without the role) with a reason that never repeats what the caller sent (a
near-miss key must not reach a log).
"""

# No "from __future__ import annotations": FastAPI must read the closures' Annotated
# parameters, whose Security(...) objects are local variables, at definition time.

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery

from durablehub.http.attempts import FailedKeyAttempts
from durablehub.http.payloads import KEY_HEADER, KEY_QUERY_PARAMETER
from durablehub.http.principal import principal_dependency
from durablehub.http.settings import HttpSettings
from durablehub.http.tokens import EntraTokenValidator, unauthorized

AuthDependency = Callable[..., Awaitable[object]]


def authentication(
    settings: HttpSettings, *, attempts: FailedKeyAttempts | None = None
) -> AuthDependency | None:
    """The dependency every management route declares, or None when auth is off. ``attempts``
    counts wrong keys per client (shared with the dashboard's login form); by default its own."""
    if settings.auth == "key":
        return _key_dependency(settings, attempts or FailedKeyAttempts(settings.key_failures_per_minute))
    if settings.auth == "entra":
        return principal_dependency(
            EntraTokenValidator(settings),
            roles=settings.entra_roles,
            scopes=settings.entra_scopes,
            client_ids=settings.entra_client_ids,
            read_roles=settings.entra_read_roles,
            read_scopes=settings.entra_read_scopes,
        )
    return None


def _key_dependency(settings: HttpSettings, attempts: FailedKeyAttempts) -> AuthDependency:
    assert settings.key is not None  # HttpSettings refuses auth=key without one
    expected = settings.key.get_secret_value().encode()
    query = APIKeyQuery(name=KEY_QUERY_PARAMETER, auto_error=False, scheme_name="code")
    header = APIKeyHeader(name=KEY_HEADER, auto_error=False, scheme_name="functionsKey")

    async def require_key(
        request: Request,
        code: Annotated[str | None, Security(query)] = None,
        header_key: Annotated[str | None, Security(header)] = None,
    ) -> None:
        supplied = header_key or code
        if not supplied:
            raise unauthorized(
                f"a key is required: the '{KEY_QUERY_PARAMETER}' query parameter or the "
                f"'{KEY_HEADER}' header",
                scheme="FunctionsKey",
            )
        client = request.client.host if request.client else None
        attempts.check(client)  # 429 while this client has used up its wrong keys
        if not hmac.compare_digest(supplied.encode(), expected):  # constant time
            attempts.failed(client)
            raise unauthorized("the key is not valid", scheme="FunctionsKey")

    return require_key
