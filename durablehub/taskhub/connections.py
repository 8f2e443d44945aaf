# Generated from durablehub/taskhub/aio/connections.py by scripts/unasync.py: edit that file instead.
"""StorageClients: the blob, queue and table service clients of one account.

Built from TaskHubSettings: an account key or SAS from the connection string, otherwise a
token credential from azure-identity (ManagedIdentityCredential when
``AzureWebJobsStorage__credential=managedidentity``, else DefaultAzureCredential). Every
client shares the request counter and fails fast on an unreachable endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.pipeline.policies import RetryPolicy
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from durablehub.settings import TaskHubSettings
from durablehub.taskhub.accounts import StorageAccount
from durablehub.taskhub.environment import session_reads_environment
from durablehub.taskhub.metering import RequestCounter


def make_token_credential(settings: TaskHubSettings) -> Any:
    """The azure-identity credential the identity-based settings ask for."""
    if settings.credential == "managedidentity":
        if settings.client_id:
            return ManagedIdentityCredential(client_id=settings.client_id)
        return ManagedIdentityCredential()
    if settings.client_id:
        return DefaultAzureCredential(managed_identity_client_id=settings.client_id)
    return DefaultAzureCredential()


# Makes the extra pipeline policy of one service client, given "blob", "queue" or "table".
PolicyFactory = Callable[[str], Any]


def _after_retry(policies: list[Any], extra: list[Any]) -> None:
    """Insert ``extra`` right after the retry policy of a tables pipeline, in place."""
    index = next(i for i, p in enumerate(policies) if isinstance(p, RetryPolicy))
    policies[index + 1 : index + 1] = extra


class StorageClients:
    """Service clients for one storage account. Close it (or use ``with``) when done.

    ``policies`` adds azure-core policies (async ones here, sync in the generated twin) to every
    request, inside the SDK's retry loop: each factory is called once per service client.
    Fault injection (``durablehub.testing.faults``) comes in this way.
    """

    def __init__(
        self,
        settings: TaskHubSettings,
        *,
        counter: RequestCounter | None = None,
        token_credential: Any = None,
        policies: Sequence[PolicyFactory] = (),
        **client_options: Any,
    ) -> None:
        self.settings = settings
        self.account: StorageAccount = settings.storage_account()
        self.counter = counter or RequestCounter()
        self._owned_credential = None
        if self.account.account_key is not None:
            credential: Any = AzureNamedKeyCredential(
                self.account.account_name, self.account.account_key.get_secret_value()
            )
        elif self.account.sas_token is not None:
            credential = AzureSasCredential(self.account.sas_token.get_secret_value())
        else:
            credential = token_credential
            if credential is None:
                credential = self._owned_credential = make_token_credential(settings)
        self.credential = credential
        common: dict[str, Any] = {
            # With none of the variables its HTTP session would use, it need not look for them:
            # with trust_env it reads and decodes the whole environment on every request.
            "use_env_settings": session_reads_environment(),
            "connection_timeout": settings.connection_timeout_seconds,
            "read_timeout": settings.read_timeout_seconds,
            "retry_total": settings.retry_total,
            **({"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}),
            **client_options,
        }
        # The storage SDKs' default back-off starts at 15 s: an unreachable endpoint would hang
        # for a minute. Start at 1 s (then 3 s, 5 s) so a wrong endpoint fails within seconds.
        storage_retry: dict[str, Any] = {"initial_backoff": 1, "increment_base": 2}
        # The storage SDKs append these after their retry policy, for sub-clients too.
        self.blob = BlobServiceClient(
            self.account.blob_url,
            credential=credential,
            raw_request_hook=self.counter.hook("blob"),
            _additional_pipeline_policies=[make("blob") for make in policies],
            **storage_retry,
            **common,
        )
        self.queue = QueueServiceClient(
            self.account.queue_url,
            credential=credential,
            raw_request_hook=self.counter.hook("queue"),
            _additional_pipeline_policies=[make("queue") for make in policies],
            **storage_retry,
            **common,
        )
        self.table = TableServiceClient(
            endpoint=self.account.table_url,
            credential=credential,
            raw_request_hook=self.counter.hook("table"),
            **common,
        )
        if policies:  # table clients are built from this list (get_table_client)
            _after_retry(self.table._policies, [make("table") for make in policies])

    def close(self) -> None:
        self.blob.close()
        self.queue.close()
        self.table.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    def __enter__(self) -> StorageClients:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.account!r})"
