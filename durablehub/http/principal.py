"""Who is calling, and whether they may: the validated principal of an Entra ID token.

``require_principal`` is the one FastAPI dependency for it, used by the management API (with
the roles and scopes of ``HttpSettings``) and by an application's own routes (a starter that
must know who places an order). A token that is not valid is a 401; a valid token without a
required role or scope, or from a client application that is not allowed, is a 403. The
management API also has read-only roles and scopes: they pass GET requests only.
"""

# No "from __future__ import annotations": FastAPI reads the closure's Annotated parameters,
# whose Security(...) object is a local variable, at definition time.

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from durablehub.errors import ConfigurationError
from durablehub.http.guards import SAFE_METHODS
from durablehub.http.settings import HttpSettings
from durablehub.http.tokens import EntraTokenValidator, unauthorized

PrincipalDependency = Callable[..., Awaitable["Principal"]]


@dataclass(frozen=True)
class Principal:
    """The caller of a validated token: ``sub``, the client application (``azp``, or ``appid``
    in v1 tokens), app roles (``roles``), delegated scopes (``scp``) and every claim."""

    subject: str | None
    client_id: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    claims: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> "Principal":
        roles = claims.get("roles") or ()
        scopes = claims.get("scp") or ""
        return cls(
            subject=claims.get("sub"),
            client_id=claims.get("azp") or claims.get("appid"),
            roles=(roles,) if isinstance(roles, str) else tuple(str(r) for r in roles),
            scopes=tuple(str(scopes).split()),
            claims=dict(claims),
        )


def refusal(
    principal: Principal, *, roles: Collection[str], scopes: Collection[str], client_ids: Collection[str]
) -> str | None:
    """Why the principal may not call, or None. With neither roles nor scopes, any may."""
    if client_ids and principal.client_id not in client_ids:
        return "the token was issued to a client application that is not allowed here"
    if not roles and not scopes:
        return None
    if set(principal.roles) & set(roles) or set(principal.scopes) & set(scopes):
        return None
    wanted = "; ".join(
        f"{kind}: {', '.join(sorted(names))}"
        for kind, names in (("roles", roles), ("scopes", scopes))
        if names
    )
    return f"the token has none of the roles or scopes required here ({wanted})"


def require_principal(
    roles: Collection[str] = (),
    scopes: Collection[str] = (),
    client_ids: Collection[str] = (),
    *,
    settings: HttpSettings | None = None,
) -> PrincipalDependency:
    """A FastAPI dependency giving a route the validated ``Principal`` of an Entra ID bearer
    token that carries one of ``roles`` or one of ``scopes`` (and, if given, was issued to one of
    ``client_ids``)::

        placer = require_principal(roles=["Orders.Place"])

        @api.post("/orders")
        async def place_order(request: Request, principal: Annotated[Principal, Depends(placer)]): ...

    The token is validated as ``settings`` (by default ``HttpSettings()``, from the environment)
    say: tenant, audience, issuer, JWKS. 401 without a valid token, 403 without the role.

    Raises:
        ConfigurationError: no role or scope named, or settings that are not ``auth=entra``.
    """
    if not roles and not scopes:
        raise ConfigurationError(
            "require_principal needs a role or scope to check: a valid token alone only says the "
            "caller belongs to the tenant"
        )
    settings = settings if settings is not None else HttpSettings()
    if settings.auth != "entra":
        raise ConfigurationError(
            "require_principal validates Microsoft Entra ID tokens: it needs HttpSettings with "
            f"auth='entra' (DURABLEHUB_HTTP_AUTH=entra), not auth={settings.auth!r}"
        )
    return principal_dependency(
        EntraTokenValidator(settings), roles=roles, scopes=scopes, client_ids=client_ids
    )


def principal_dependency(
    validator: EntraTokenValidator,
    *,
    roles: Collection[str],
    scopes: Collection[str],
    client_ids: Collection[str],
    read_roles: Collection[str] = (),
    read_scopes: Collection[str] = (),
) -> PrincipalDependency:
    """The dependency itself, without the check that some role or scope is required (the
    management API may be told to accept any principal: no role or scope at all).

    ``roles`` and ``scopes`` grant every request; ``read_roles`` and ``read_scopes`` only reads
    (GET, HEAD, OPTIONS). With read ones alone, nobody may change anything. Whether the caller
    may change the hub is left in ``request.state.may_write`` (the dashboard hides its actions).
    """
    roles, scopes, client_ids = frozenset(roles), frozenset(scopes), frozenset(client_ids)
    readers, read_scopes = roles | frozenset(read_roles), scopes | frozenset(read_scopes)
    anyone = not (readers or read_scopes)
    bearer = HTTPBearer(auto_error=False, scheme_name="entraId", bearerFormat="JWT")

    def forbidden(reason: str) -> HTTPException:
        challenge = 'Bearer error="insufficient_scope"'
        return HTTPException(status_code=403, detail=reason, headers={"WWW-Authenticate": challenge})

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("a bearer token is required (Authorization: Bearer ...)", scheme="Bearer")
        # Fetching the JWKS is blocking I/O (urllib): keep it off the event loop.
        claims = await run_in_threadpool(validator.validate, credentials.credentials)
        caller = Principal.from_claims(claims)
        reason = refusal(caller, roles=readers, scopes=read_scopes, client_ids=client_ids)
        if reason is not None:
            raise forbidden(reason)
        may_write = anyone or (
            bool(roles or scopes) and refusal(caller, roles=roles, scopes=scopes, client_ids=()) is None
        )
        if request.method not in SAFE_METHODS and not may_write:
            raise forbidden(_write_refusal(roles, scopes))
        request.state.principal = caller
        request.state.may_write = may_write
        return caller

    return principal


def _write_refusal(roles: Collection[str], scopes: Collection[str]) -> str:
    if not roles and not scopes:
        return (
            "nobody may change the hub on this server: only read roles or scopes are configured "
            "(DURABLEHUB_HTTP_ENTRA_READ_ROLES / _READ_SCOPES), no DURABLEHUB_HTTP_ENTRA_ROLES / _SCOPES"
        )
    wanted = "; ".join(
        f"{kind}: {', '.join(sorted(names))}"
        for kind, names in (("roles", roles), ("scopes", scopes))
        if names
    )
    return f"the token may read the hub but not change it: that needs one of these ({wanted})"
