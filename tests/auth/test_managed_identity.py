"""Identity-based connections end to end: the real ManagedIdentityCredential against Azurite
started with ``--oauth basic`` over HTTPS, and a loopback managed-identity endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ManagedIdentityCredential

from durablehub.azurite import AzuriteProcess
from durablehub.engine import history as ev
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.connections import AsyncStorageClients
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.connections import StorageClients
from durablehub.taskhub.hub import TaskHub
from tests.auth.identity_endpoint import IdentityEndpoint, write_self_signed_cert
from tests.conftest import new_hub_name

pytestmark = pytest.mark.azurite
CLIENT_ID = "0b8c1f7e-3a6d-4e59-9c2a-7d1e5f4a3b21"


@pytest.fixture(scope="module")
def https_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AzuriteProcess, Path]]:
    folder = tmp_path_factory.mktemp("azurite-oauth")
    cert, key = write_self_signed_cert(folder)
    with AzuriteProcess(location=folder / "data", oauth=True, cert=cert, key=key) as process:
        yield process, cert


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    with IdentityEndpoint() as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.secret)
        yield endpoint


def identity_settings(azurite: AzuriteProcess, cert: Path, **overrides) -> TaskHubSettings:  # noqa: ANN003
    values = dict(
        task_hub=new_hub_name(),
        blob_service_uri=azurite.endpoint("blob"),
        queue_service_uri=azurite.endpoint("queue"),
        table_service_uri=azurite.endpoint("table"),
        credential="managedidentity",
        client_id=CLIENT_ID,
        ca_bundle=str(cert),
    )
    return TaskHubSettings(**{**values, **overrides})


def test_hub_works_through_the_real_managed_identity_credential(https_azurite, identity_endpoint) -> None:
    azurite, cert = https_azurite
    settings = identity_settings(azurite, cert)
    with TaskHub(settings) as hub:
        assert type(hub.clients.credential) is ManagedIdentityCredential
        assert hub.clients.account.blob_url.startswith("https://127.0.0.1:")
        hub.create()
        hub.history.commit(
            "mi-1", "e1", [ev.OrchestratorStarted()], first_sequence_number=0, sentinel_etag=None
        )
        assert len(hub.history.load("mi-1").events) == 1
        msg = envelope.MessageData(
            task_message=envelope.TaskMessage(
                event=ev.EventRaised(name="go", input="1"),
                orchestration_instance=ev.OrchestrationInstance(instance_id="mi-1"),
            )
        )
        hub.control_queue_for("mi-1").send(msg)
        [received] = hub.control_queue_for("mi-1").receive(visibility_timeout=timedelta(seconds=30))
        assert received.message == msg
        lease = hub.leases.acquire(hub.names.control_queues[0], "w", duration=timedelta(seconds=15))
        assert lease is not None
        hub.delete()
    assert identity_endpoint.requests, "the credential never called the identity endpoint"
    assert {q.get("client_id", [None])[0] for q in identity_endpoint.requests} == {CLIENT_ID}
    assert {q.get("resource", [None])[0] for q in identity_endpoint.requests} == {"https://storage.azure.com"}


async def test_async_clients_use_the_async_managed_identity_credential(
    https_azurite, identity_endpoint
) -> None:
    from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

    azurite, cert = https_azurite
    async with AsyncTaskHub(identity_settings(azurite, cert)) as hub:
        assert type(hub.clients.credential) is AsyncManagedIdentityCredential
        await hub.create()
        assert (await hub.open()).partition_count == 4
        await hub.delete()
    assert identity_endpoint.requests


def test_a_token_for_another_audience_is_rejected_by_storage(https_azurite, monkeypatch) -> None:
    azurite, cert = https_azurite
    with IdentityEndpoint(audience="https://vault.azure.net") as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.secret)
        with StorageClients(identity_settings(azurite, cert, retry_total=0)) as clients:
            with pytest.raises((ClientAuthenticationError, HttpResponseError)) as info:
                clients.queue.get_queue_client("anything").create_queue()
            assert info.value.status_code in (401, 403)


def test_connection_string_over_http_still_works(azurite) -> None:
    with StorageClients(
        TaskHubSettings(task_hub="AnyHub", connection_string=azurite.connection_string)
    ) as clients:
        assert clients.account.auth_kind == "account key"
        list(clients.queue.list_queues())
    assert AsyncStorageClients  # the async twin is exercised by the hub fixtures
