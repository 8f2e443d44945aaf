"""HttpSettings: how the management API authenticates callers and where its URLs point.

Read from ``DURABLEHUB_HTTP_*`` variables (or passed as field names). By default every route
needs the key ``DURABLEHUB_HTTP_KEY``, sent as Functions clients send the system key: the
``code`` query parameter or the ``x-functions-key`` header. With ``DURABLEHUB_HTTP_AUTH=entra``
Microsoft Entra ID bearer tokens are validated instead (issuer, audience, signature from the
tenant's JWKS document, expiry). ``none`` turns authentication off, for a loopback-only server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from durablehub.errors import ConfigurationError

MIN_KEY_LENGTH = 16  # a guessable key is no protection; Functions' generated keys are 40+ chars
ENTRA_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


class HttpSettings(BaseSettings):
    """Authentication and public URL of the HTTP management API."""

    model_config = SettingsConfigDict(
        env_prefix="DURABLEHUB_HTTP_",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        frozen=True,
    )

    auth: Literal["key", "entra", "none"] = "key"
    key: SecretStr | None = Field(default=None, description="The key every request must carry (auth=key)")
    base_url: str | None = Field(
        default=None,
        description="Public URL of the server (e.g. https://orders.example.com) used in management "
        "URLs; by default the URL the request came in on",
    )
    entra_tenant_id: str | None = None
    entra_audience: str | None = Field(default=None, description="The token's expected 'aud' (app id URI)")
    entra_issuer: str | None = Field(default=None, description="Expected 'iss'; by default the v2.0 issuer")
    entra_jwks_url: str | None = Field(default=None, description="Signing keys; by default the tenant's")
    entra_leeway_seconds: int = Field(default=60, ge=0, description="Clock skew allowed on exp/nbf/iat")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1,
        description="Largest request body accepted (an input, event data, an operation's input); "
        "a larger one is refused with 413",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid HTTP settings: {problems}") from None

    @model_validator(mode="after")
    def _check_auth(self) -> HttpSettings:
        if self.auth == "key":
            if self.key is None:
                raise ValueError(
                    "the HTTP API needs a key: set DURABLEHUB_HTTP_KEY (at least "
                    f"{MIN_KEY_LENGTH} characters), or DURABLEHUB_HTTP_AUTH=entra for Entra ID tokens"
                )
            if len(self.key.get_secret_value()) < MIN_KEY_LENGTH:
                raise ValueError(f"DURABLEHUB_HTTP_KEY must be at least {MIN_KEY_LENGTH} characters long")
        if self.auth == "entra":
            if not self.entra_audience:
                raise ValueError("auth=entra needs DURABLEHUB_HTTP_ENTRA_AUDIENCE (the API's app id URI)")
            if not self.entra_tenant_id and not (self.entra_issuer and self.entra_jwks_url):
                raise ValueError(
                    "auth=entra needs DURABLEHUB_HTTP_ENTRA_TENANT_ID, or both "
                    "DURABLEHUB_HTTP_ENTRA_ISSUER and DURABLEHUB_HTTP_ENTRA_JWKS_URL"
                )
        return self

    @property
    def issuer(self) -> str:
        return self.entra_issuer or f"{ENTRA_AUTHORITY}/{self.entra_tenant_id}/v2.0"

    @property
    def jwks_url(self) -> str:
        return self.entra_jwks_url or f"{ENTRA_AUTHORITY}/{self.entra_tenant_id}/discovery/v2.0/keys"

    @property
    def url_key(self) -> str | None:
        """The key management URLs carry (``code=``), as Functions embeds its system key."""
        return self.key.get_secret_value() if self.auth == "key" and self.key is not None else None
