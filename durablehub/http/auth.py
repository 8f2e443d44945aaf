"""Who may call the management API: a key (as Functions' system key) or an Entra ID token.

Each mode is a FastAPI dependency built from ``HttpSettings``; declaring it through FastAPI's
security classes also puts the scheme in the OpenAPI description. Failures are 401 with a
reason that never repeats what the caller sent (a near-miss key must not reach a log).
"""

# No "from __future__ import annotations": FastAPI must read the closures' Annotated
# parameters, whose Security(...) objects are local variables, at definition time.

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import jwt
from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from durablehub.http.payloads import KEY_QUERY_PARAMETER
from durablehub.http.settings import HttpSettings

KEY_HEADER = "x-functions-key"
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 10
ALGORITHMS = ["RS256"]  # what Entra ID signs access tokens with

AuthDependency = Callable[..., Awaitable[None]]


def unauthorized(reason: str, *, scheme: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": scheme})


def authentication(settings: HttpSettings) -> AuthDependency | None:
    """The dependency every management route declares, or None when auth is off."""
    if settings.auth == "key":
        return _key_dependency(settings)
    if settings.auth == "entra":
        return _entra_dependency(EntraTokenValidator(settings))
    return None


def _key_dependency(settings: HttpSettings) -> AuthDependency:
    assert settings.key is not None  # HttpSettings refuses auth=key without one
    expected = settings.key.get_secret_value().encode()
    query = APIKeyQuery(name=KEY_QUERY_PARAMETER, auto_error=False, scheme_name="code")
    header = APIKeyHeader(name=KEY_HEADER, auto_error=False, scheme_name="functionsKey")

    async def require_key(
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
        if not hmac.compare_digest(supplied.encode(), expected):  # constant time
            raise unauthorized("the key is not valid", scheme="FunctionsKey")

    return require_key


class EntraTokenValidator:
    """Validates bearer tokens: RS256 signature by a key of the JWKS document, iss, aud, exp."""

    def __init__(self, settings: HttpSettings) -> None:
        self.issuer = settings.issuer
        self.audience = settings.entra_audience
        self.leeway = settings.entra_leeway_seconds
        # PyJWKClient caches the key set and fetches it again for an unknown kid (key rollover).
        self._keys = jwt.PyJWKClient(
            settings.jwks_url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=JWKS_TIMEOUT_SECONDS
        )

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims.

        Raises:
            HTTPException: 401 for a token that is not valid, 503 if the keys cannot be fetched.
        """
        scheme = f'Bearer error="invalid_token", authorization_uri="{self.issuer}"'
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            return jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise HTTPException(
                status_code=503, detail="cannot fetch the token signing keys (JWKS); try again later"
            ) from None
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired", scheme=scheme) from None
        except jwt.InvalidAudienceError:
            raise unauthorized("the token is for another audience", scheme=scheme) from None
        except jwt.InvalidIssuerError:
            raise unauthorized("the token comes from another issuer", scheme=scheme) from None
        except jwt.InvalidSignatureError:
            raise unauthorized("the token's signature is not valid", scheme=scheme) from None
        except jwt.PyJWKClientError:
            raise unauthorized("the token is not signed by a known key", scheme=scheme) from None
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"the token is not valid ({type(exc).__name__})", scheme=scheme) from None


def _entra_dependency(validator: EntraTokenValidator) -> AuthDependency:
    bearer = HTTPBearer(auto_error=False, scheme_name="entraId", bearerFormat="JWT")

    async def require_token(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("a bearer token is required (Authorization: Bearer ...)", scheme="Bearer")
        # Fetching the JWKS is blocking I/O (urllib): keep it off the event loop.
        request.state.claims = await run_in_threadpool(validator.validate, credentials.credentials)

    return require_token
