"""HttpSettings: how the management API authenticates callers and where its URLs point.

Read from ``DURABLEHUB_HTTP_*`` variables (or passed as field names). By default every route
needs the key ``DURABLEHUB_HTTP_KEY``, sent as Functions clients send the system key: the
``code`` query parameter or the ``x-functions-key`` header. With ``DURABLEHUB_HTTP_AUTH=entra``
Microsoft Entra ID bearer tokens are validated instead (issuer, audience, signature from the
tenant's JWKS document, expiry) and must carry one of the configured app roles or scopes: the
``ENTRA_ROLES`` / ``ENTRA_SCOPES`` grant everything, ``ENTRA_READ_ROLES`` / ``ENTRA_READ_SCOPES``
only reads (GET).
``none`` turns authentication off, for a loopback-only server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from durablehub.errors import ConfigurationError
from durablehub.http.hosts import LOOPBACK_NAMES

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
        "URLs; by default the URL the request came in on, if its host is an allowed one",
    )
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Host names requests may carry (comma-separated; '*.example.com' for subdomains, "
        "'*' for any); by default the loopback names and the host of base_url",
    )
    key_in_urls: bool = Field(
        default=False,
        description="Put the key in management URLs (code=), as Functions does: whoever sees a "
        "check-status response then controls the hub",
    )
    entra_tenant_id: str | None = None
    entra_audience: str | None = Field(default=None, description="The token's expected 'aud' (app id URI)")
    entra_issuer: str | None = Field(default=None, description="Expected 'iss'; by default the v2.0 issuer")
    entra_jwks_url: str | None = Field(default=None, description="Signing keys; by default the tenant's")
    entra_leeway_seconds: int = Field(default=60, ge=0, description="Clock skew allowed on exp/nbf/iat")
    entra_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="App roles (the 'roles' claim) that grant every operation: reads and changes",
    )
    entra_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Delegated scopes (the 'scp' claim) that grant every operation: reads and changes",
    )
    entra_read_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="App roles that grant reads only (GET): status, lists, history, the dashboard's pages",
    )
    entra_read_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Delegated scopes that grant reads only (GET)"
    )
    entra_client_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="If set, the client applications ('azp' or 'appid') whose tokens are accepted",
    )
    entra_allow_any_principal: bool = Field(
        default=False,
        description="Accept any principal of the tenant with a token for the audience (no role or scope)",
    )
    key_failures_per_minute: int = Field(
        default=20,
        ge=1,
        description="Wrong keys a client may send in a minute (API and dashboard login); after "
        "that its keys are answered 429 with Retry-After",
    )
    read_only: bool = Field(
        default=False,
        description="Refuse every request that would change the hub (the dashboard hides its actions)",
    )
    dashboard: bool = Field(default=True, description="Serve the web dashboard at /dashboard")
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

    @field_validator(
        "allowed_hosts",
        "entra_roles",
        "entra_scopes",
        "entra_read_roles",
        "entra_read_scopes",
        "entra_client_ids",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        return (
            [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                raise ValueError(
                    f"DURABLEHUB_HTTP_BASE_URL must be an http(s) URL without a query, not {value!r}"
                )
        return value.rstrip("/") if value else value

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
            granted = self.entra_roles or self.entra_scopes or self.entra_read_roles or self.entra_read_scopes
            if not (granted or self.entra_allow_any_principal):
                raise ValueError(
                    "auth=entra needs DURABLEHUB_HTTP_ENTRA_ROLES or DURABLEHUB_HTTP_ENTRA_SCOPES (an app "
                    "role or a scope a token must carry): without them any principal of the tenant "
                    "with a token for the audience administers the hub. Set "
                    "DURABLEHUB_HTTP_ENTRA_ALLOW_ANY_PRINCIPAL=true if that is what you want"
                )
        return self

    @property
    def issuer(self) -> str:
        return self.entra_issuer or f"{ENTRA_AUTHORITY}/{self.entra_tenant_id}/v2.0"

    @property
    def jwks_url(self) -> str:
        return self.entra_jwks_url or f"{ENTRA_AUTHORITY}/{self.entra_tenant_id}/discovery/v2.0/keys"

    @property
    def trusted_hosts(self) -> list[str]:
        """The host names a request may carry: ``allowed_hosts``, or loopback and base_url's host."""
        if self.allowed_hosts is not None:
            return list(self.allowed_hosts)
        base_host = urlsplit(self.base_url).hostname if self.base_url else None
        return [*LOOPBACK_NAMES, *([base_host] if base_host else [])]

    @property
    def url_key(self) -> str | None:
        """The key management URLs carry (``code=``): only with ``key_in_urls``, as Functions
        embeds its system key. Off by default: a check-status response often goes to a caller
        (a customer placing an order) who must not control the hub."""
        if self.key_in_urls and self.auth == "key" and self.key is not None:
            return self.key.get_secret_value()
        return None
