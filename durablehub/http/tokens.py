"""Entra ID access tokens: the signature by a key of the tenant's JWKS document, iss, aud, exp.

Validation only says who the caller is; ``principal`` decides what that caller may do.
"""

from __future__ import annotations

from typing import Any

import jwt
from fastapi import HTTPException

from durablehub.http.settings import HttpSettings

JWKS_CACHE_SECONDS = 300  # a key withdrawn from the document is refused at most this long after
JWKS_REFETCH_COOLDOWN_SECONDS = 30  # unknown kids fetch the document at most this often
JWKS_TIMEOUT_SECONDS = 10
ALGORITHMS = ["RS256"]  # what Entra ID signs access tokens with


def unauthorized(reason: str, *, scheme: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": scheme})


class EntraTokenValidator:
    """Validates bearer tokens: RS256 signature by a key of the JWKS document, iss, aud, exp."""

    def __init__(self, settings: HttpSettings) -> None:
        self.issuer = settings.issuer
        self.audience = settings.entra_audience
        self.leeway = settings.entra_leeway_seconds
        # The key set is cached for a while and fetched again when it expires, or for an unknown
        # kid (key rollover), at most once per cooldown so that made-up kids cannot make every
        # request fetch it. No per-kid cache (cache_keys): PyJWT keeps those forever, so a key
        # withdrawn from the document would stay trusted.
        self._keys = jwt.PyJWKClient(
            settings.jwks_url,
            cache_keys=False,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            cooldown_duration=JWKS_REFETCH_COOLDOWN_SECONDS,
            timeout=JWKS_TIMEOUT_SECONDS,
        )

    @property
    def challenge(self) -> str:
        return f'Bearer error="invalid_token", authorization_uri="{self.issuer}"'

    def validate(self, token: str) -> dict[str, Any]:
        """The token's claims.

        Raises:
            HTTPException: 401 for a token that is not valid, 503 if the keys cannot be fetched.
        """
        scheme = self.challenge
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            return jwt.decode(
                token,
                key,  # the PyJWK, not its key: its algorithm is bound to the token's (PyJWT 2.13)
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
