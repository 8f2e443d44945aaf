"""Storage account endpoints and secrets, parsed from a connection string or identity settings.

Pure: no client is built here. One parser for all three services, because the tables SDK
does not understand ``UseDevelopmentStorage=true`` and the storage SDKs each parse a
little differently. Errors name the problem but never echo the string: it holds the key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import SecretStr

from durablehub.errors import ConfigurationError

# The well-known Azurite / storage-emulator account (public, documented by Microsoft).
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# 127.0.0.1, not localhost: with localhost the tables SDK mistakes the account for Cosmos (spec §7).
DEV_HOST = "http://127.0.0.1"
DEV_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
# The secret parts of connection strings and SAS URLs; what follows '=' up to a separator.
_SECRETS = re.compile(r"\b(AccountKey|SharedAccessSignature|sig)=[^;&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with account keys and SAS signatures masked: for anything shown or logged that
    may quote a connection string or a request URL (an SDK's error message, say)."""
    return _SECRETS.sub(lambda m: f"{m.group(1)}=***", text)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageAccount:
    """Where the three services are and which shared secret, if any, signs requests."""

    account_name: str
    blob_url: str
    queue_url: str
    table_url: str
    account_key: SecretStr | None = field(default=None, repr=False)
    sas_token: SecretStr | None = field(default=None, repr=False)
    development_storage: bool = False  # UseDevelopmentStorage=true: the emulator's public key

    @property
    def auth_kind(self) -> str:
        if self.account_key is not None:
            return "account key"
        if self.sas_token is not None:
            return "SAS token"
        return "token credential"

    def url(self, service: str) -> str:
        return {"blob": self.blob_url, "queue": self.queue_url, "table": self.table_url}[service]

    def insecure_endpoints(self) -> list[str]:
        """``scheme://host:port`` of each plain-HTTP endpoint on another machine: there, a key,
        a SAS or a token would cross the network readable (the emulator's key is public)."""
        if self.development_storage:
            return []
        found: list[str] = []
        for url in (self.blob_url, self.queue_url, self.table_url):
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if parts.scheme == "http" and not _is_loopback(parts.hostname or "") and origin not in found:
                found.append(origin)
        return found

    def __repr__(self) -> str:
        return (
            f"StorageAccount(account_name={self.account_name!r}, blob_url={self.blob_url!r}, "
            f"queue_url={self.queue_url!r}, table_url={self.table_url!r}, auth={self.auth_kind!r})"
        )


def _split_segments(connection_string: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, segment in enumerate(s for s in connection_string.strip().split(";") if s.strip()):
        key, sep, value = segment.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"malformed storage connection string: segment {index + 1} is not of the form Key=Value"
            )
        values[key.strip().lower()] = value.strip()
    if not values:
        raise ConfigurationError("empty storage connection string")
    return values


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{what} must be an http(s) URL with a host, got {redact(url)!r}")
    if parts.query or parts.fragment:
        # A SAS token here would be shown in logs and reprs, and copied into every blob URL the
        # Instances table stores: it belongs in SharedAccessSignature=, never in a URL.
        raise ConfigurationError(
            f"{what} must not have a query string (got {parts.scheme}://{parts.netloc}{parts.path}?...): "
            "put a SAS token in the connection string's SharedAccessSignature=... segment"
        )
    return url.rstrip("/")


def parse_connection_string(connection_string: str) -> StorageAccount:
    """Parse an Azure Storage connection string (key, SAS, development storage, custom endpoints)."""
    values = _split_segments(connection_string)
    if values.get("usedevelopmentstorage", "").lower() == "true":
        proxy = values.get("developmentstorageproxyuri")
        host = _check_url(proxy, "DevelopmentStorageProxyUri") if proxy else DEV_HOST
        host = host.rsplit(":", 1)[0] if urlsplit(host).port else host
        dev_urls = {svc: f"{host}:{port}/{DEV_ACCOUNT_NAME}" for svc, port in DEV_PORTS.items()}
        return StorageAccount(
            account_name=DEV_ACCOUNT_NAME,
            blob_url=dev_urls["blob"],
            queue_url=dev_urls["queue"],
            table_url=dev_urls["table"],
            account_key=SecretStr(DEV_ACCOUNT_KEY),
            development_storage=True,
        )

    account_name = values.get("accountname")
    key = values.get("accountkey")
    sas = values.get("sharedaccesssignature")
    if key and sas:
        raise ConfigurationError("storage connection string has both AccountKey and SharedAccessSignature")
    protocol = values.get("defaultendpointsprotocol", "https").lower()
    if protocol not in ("http", "https"):
        raise ConfigurationError(f"DefaultEndpointsProtocol must be http or https, got {protocol!r}")
    suffix = values.get("endpointsuffix", "core.windows.net")

    urls: dict[str, str] = {}
    for service in ("blob", "queue", "table"):
        explicit = values.get(f"{service}endpoint")
        if explicit:
            urls[service] = _check_url(explicit, f"{service.capitalize()}Endpoint")
        elif account_name:
            urls[service] = f"{protocol}://{account_name}.{service}.{suffix}"
        else:
            raise ConfigurationError(
                f"storage connection string has neither AccountName nor {service.capitalize()}Endpoint; "
                "durablehub needs the blob, queue and table services"
            )
    if account_name is None:
        account_name = _account_from_url(urls["queue"])
    if key is None and sas is None:
        raise ConfigurationError(
            "storage connection string has no AccountKey or SharedAccessSignature; for Managed Identity "
            "use AzureWebJobsStorage__accountName (or the __*ServiceUri settings) instead"
        )
    if key and account_name is None:
        raise ConfigurationError("storage connection string has an AccountKey but no AccountName")
    return StorageAccount(
        account_name=account_name or "",
        blob_url=urls["blob"],
        queue_url=urls["queue"],
        table_url=urls["table"],
        account_key=SecretStr(key) if key else None,
        sas_token=SecretStr(sas.lstrip("?")) if sas else None,
    )


def _account_from_url(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.count(".") >= 2 and not host.replace(".", "").isdigit():
        return host.split(".", 1)[0]
    path = parts.path.strip("/")  # path-style (Azurite, IP endpoints): the first path segment
    return path.split("/", 1)[0] or None


def resolve_identity_account(
    *,
    account_name: str | None,
    blob_service_uri: str | None,
    queue_service_uri: str | None,
    table_service_uri: str | None,
) -> StorageAccount:
    """Endpoints for the identity-based form: per-service URIs, or derived from the account name."""
    given = {"blob": blob_service_uri, "queue": queue_service_uri, "table": table_service_uri}
    urls: dict[str, str] = {}
    for service, uri in given.items():
        if uri:
            urls[service] = _check_url(uri, f"AzureWebJobsStorage__{service}ServiceUri")
        elif account_name:
            urls[service] = f"https://{account_name}.{service}.core.windows.net"
        else:
            raise ConfigurationError(
                f"identity-based connection needs AzureWebJobsStorage__accountName or "
                f"AzureWebJobsStorage__{service}ServiceUri"
            )
    name = account_name or _account_from_url(urls["queue"]) or ""
    return StorageAccount(
        account_name=name, blob_url=urls["blob"], queue_url=urls["queue"], table_url=urls["table"]
    )
