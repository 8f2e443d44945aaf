"""TaskHubSettings: where the task hub lives and how to authenticate, from the environment.

Reads the conventions Functions users already have (spec §6):

* ``AzureWebJobsStorage``: a connection string (account key, SAS, ``UseDevelopmentStorage=true``,
  custom endpoints);
* or the identity-based form ``AzureWebJobsStorage__accountName`` / ``__blobServiceUri`` /
  ``__queueServiceUri`` / ``__tableServiceUri``, with ``__credential=managedidentity`` and
  ``__clientId`` for a user-assigned identity;
* ``DURABLEHUB_TASK_HUB`` and ``DURABLEHUB_PARTITION_COUNT``;
* ``DURABLEHUB_ALLOW_INSECURE_HTTP``: plain-HTTP endpoints are refused unless they are on this
  machine (loopback) or development storage, or this is true.

Secrets are ``SecretStr`` and inputs are hidden from validation errors, so neither a repr nor
an error message ever shows an account key or a SAS token; endpoint URLs with a query string
(a SAS there would be logged and stored in blob URLs) are refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import (
    StorageAccount,
    parse_connection_string,
    redact,
    resolve_identity_account,
)
from durablehub.taskhub.names import (
    DEFAULT_PARTITIONS,
    TaskHubNames,
    validate_hub_name,
    validate_partition_count,
)

ENVELOPE_ROOM = 64 * 1024  # a message's own fields around its payload


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class TaskHubSettings(BaseSettings):
    """Everything needed to open a task hub. Field names or their environment variables work."""

    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        frozen=True,
    )

    task_hub: str = Field(default="TestHubName", validation_alias=_env("task_hub", "DURABLEHUB_TASK_HUB"))
    partition_count: int = Field(
        default=DEFAULT_PARTITIONS, validation_alias=_env("partition_count", "DURABLEHUB_PARTITION_COUNT")
    )
    connection_string: SecretStr | None = Field(
        default=None, validation_alias=_env("connection_string", "AzureWebJobsStorage")
    )
    account_name: str | None = Field(
        default=None, validation_alias=_env("account_name", "AzureWebJobsStorage__accountName")
    )
    blob_service_uri: str | None = Field(
        default=None, validation_alias=_env("blob_service_uri", "AzureWebJobsStorage__blobServiceUri")
    )
    queue_service_uri: str | None = Field(
        default=None, validation_alias=_env("queue_service_uri", "AzureWebJobsStorage__queueServiceUri")
    )
    table_service_uri: str | None = Field(
        default=None, validation_alias=_env("table_service_uri", "AzureWebJobsStorage__tableServiceUri")
    )
    credential: str | None = Field(
        default=None, validation_alias=_env("credential", "AzureWebJobsStorage__credential")
    )
    client_id: str | None = Field(
        default=None, validation_alias=_env("client_id", "AzureWebJobsStorage__clientId")
    )
    allow_insecure_http: bool = Field(
        default=False,
        validation_alias=_env("allow_insecure_http", "DURABLEHUB_ALLOW_INSECURE_HTTP"),
        description="allow plain-HTTP storage endpoints on other hosts than this one (loopback)",
    )
    ca_bundle: str | None = Field(
        default=None,
        validation_alias=_env("ca_bundle", "DURABLEHUB_CA_BUNDLE"),
        description="PEM file of extra trusted CAs (a self-signed Azurite over HTTPS, a corporate proxy)",
    )
    # Network behaviour of every storage client: fail within seconds on an unreachable endpoint.
    connection_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    retry_total: int = Field(default=3, ge=0)
    # What one caller can make every worker hold in memory: a client refuses a larger payload
    # (PayloadTooLargeError), and no blob is inflated beyond max_decompressed_bytes (a message
    # whose blob is larger goes to poison). Room for a payload escaped inside its envelope.
    max_payload_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("max_payload_bytes", "DURABLEHUB_MAX_PAYLOAD_BYTES"),
    )
    max_decompressed_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        validation_alias=_env("max_decompressed_bytes", "DURABLEHUB_MAX_DECOMPRESSED_BYTES"),
    )
    # Durable Functions' host.json option of the same name (throwStatusExceptionsOnRaiseEvent,
    # true on Azure Storage): read the instance's status before raising an event, so that an
    # event to a missing or finished instance is an error rather than a message the worker
    # discards. Off, a raise is one send (DurableTask.Core's TaskHubClient): one storage
    # request per event instead of two.
    throw_status_exceptions_on_raise_event: bool = Field(
        default=True,
        validation_alias=_env(
            "throw_status_exceptions_on_raise_event", "DURABLEHUB_THROW_STATUS_EXCEPTIONS_ON_RAISE_EVENT"
        ),
    )
    # Instances a bulk operation (purge by filter, clean_entity_storage) works on at once.
    bulk_concurrency: int = Field(
        default=16, ge=1, le=64, validation_alias=_env("bulk_concurrency", "DURABLEHUB_BULK_CONCURRENCY")
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # Re-raised without the inputs: a connection string must never reach a log.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid task hub settings: {problems}") from None

    @field_validator("task_hub")
    @classmethod
    def _check_hub(cls, value: str) -> str:
        return validate_hub_name(value)

    @field_validator("partition_count")
    @classmethod
    def _check_partitions(cls, value: int) -> int:
        return validate_partition_count(value)

    @field_validator("credential")
    @classmethod
    def _check_credential(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in ("managedidentity",):
            raise ValueError(
                f"unsupported credential {value!r}: use 'managedidentity', or leave it unset "
                "for DefaultAzureCredential"
            )
        return value.lower() if value else None

    @model_validator(mode="after")
    def _check_limits(self) -> TaskHubSettings:
        # A payload is escaped inside its message (up to twice as long) before it is compressed.
        room = 2 * self.max_payload_bytes + ENVELOPE_ROOM
        if self.max_decompressed_bytes < room:
            raise ValueError(
                f"max_decompressed_bytes ({self.max_decompressed_bytes:,}) must be at least twice "
                f"max_payload_bytes plus {ENVELOPE_ROOM:,} ({room:,}), or accepted payloads could not be read"
            )
        return self

    @model_validator(mode="after")
    def _check_account(self) -> TaskHubSettings:
        has_identity = any(
            (self.account_name, self.blob_service_uri, self.queue_service_uri, self.table_service_uri)
        )
        if self.connection_string is None and not has_identity:
            raise ValueError(
                "no storage account configured: set AzureWebJobsStorage to a connection string "
                "(UseDevelopmentStorage=true for Azurite) or AzureWebJobsStorage__accountName "
                "for an identity-based connection"
            )
        account = self.storage_account()  # parse now, so a malformed connection string fails at startup
        insecure = account.insecure_endpoints()
        if insecure and not self.allow_insecure_http:
            several = len(insecure) > 1
            raise ValueError(
                f"storage endpoint{'s' if several else ''} {', '.join(insecure)} "
                f"use{'' if several else 's'} plain HTTP to another host: the account key, SAS or token "
                "and every payload would cross the network unencrypted; use https, or set "
                "DURABLEHUB_ALLOW_INSECURE_HTTP=true (allow_insecure_http=True) on a network you trust "
                "(an Azurite container, say)"
            )
        return self

    @property
    def names(self) -> TaskHubNames:
        return TaskHubNames(self.task_hub, self.partition_count)

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def storage_account(self) -> StorageAccount:
        """Endpoints and secret material of the storage account (parsed, never logged)."""
        if self.connection_string is not None:
            return parse_connection_string(self.connection_string.get_secret_value())
        return resolve_identity_account(
            account_name=self.account_name,
            blob_service_uri=self.blob_service_uri,
            queue_service_uri=self.queue_service_uri,
            table_service_uri=self.table_service_uri,
        )

    def describe(self) -> str:
        """One line for logs: hub, partitions and endpoints, no secrets."""
        account = self.storage_account()
        auth = (
            f"identity ({self.credential or 'DefaultAzureCredential'})"
            if self.uses_identity
            else account.auth_kind
        )
        return redact(  # endpoints carry no query (refused above); redact guards the rest
            f"task hub {self.task_hub!r} ({self.partition_count} partitions) on account "
            f"{account.account_name!r} via {auth}: blob={account.blob_url} queue={account.queue_url} "
            f"table={account.table_url}"
        )
