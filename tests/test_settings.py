"""TaskHubSettings and connection strings: every form Functions users have, and no leaked secret."""

from __future__ import annotations

import pytest

from durablehub.errors import ConfigurationError
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.accounts import DEV_ACCOUNT_KEY, parse_connection_string

KEY = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="
SAS = "sv=2023-01-01&ss=bqt&sig=TOPSECRETSIGNATURE"


def test_development_storage_uses_loopback_ip_and_the_well_known_account() -> None:
    account = parse_connection_string("UseDevelopmentStorage=true")
    assert account.blob_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert account.queue_url == "http://127.0.0.1:10001/devstoreaccount1"
    assert account.table_url == "http://127.0.0.1:10002/devstoreaccount1"
    assert account.account_key.get_secret_value() == DEV_ACCOUNT_KEY
    proxied = parse_connection_string("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://10.1.2.3")
    assert proxied.queue_url == "http://10.1.2.3:10001/devstoreaccount1"


def test_account_key_string_derives_endpoints() -> None:
    account = parse_connection_string(
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
    )
    assert account.account_name == "acme" and account.auth_kind == "account key"
    assert account.table_url == "https://acme.table.core.chinacloudapi.cn"


def test_custom_endpoints_and_sas() -> None:
    account = parse_connection_string(
        f"BlobEndpoint=https://b.example/acct;QueueEndpoint=https://q.example/acct;"
        f"TableEndpoint=https://t.example/acct;SharedAccessSignature=?{SAS}"
    )
    assert account.blob_url == "https://b.example/acct" and account.auth_kind == "SAS token"
    assert account.sas_token.get_secret_value() == SAS


@pytest.mark.parametrize(
    ("conn", "problem"),
    [
        ("garbage", "segment 1 is not of the form Key=Value"),
        ("", "empty"),
        ("AccountName=a", "no AccountKey or SharedAccessSignature"),
        (f"AccountKey={KEY}", "neither AccountName nor BlobEndpoint"),
        (
            f"AccountName=a;AccountKey={KEY};SharedAccessSignature={SAS}",
            "both AccountKey and SharedAccessSignature",
        ),
        (f"AccountName=a;AccountKey={KEY};DefaultEndpointsProtocol=ftp", "http or https"),
        (f"AccountName=a;AccountKey={KEY};QueueEndpoint=not-a-url", "QueueEndpoint must be an http"),
    ],
)
def test_wrong_connection_strings_name_the_problem_without_echoing_secrets(conn: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        TaskHubSettings(task_hub="GoodHub", connection_string=conn)
    assert KEY not in str(info.value) and "TOPSECRET" not in str(info.value)


def test_secrets_never_appear_in_reprs_or_descriptions() -> None:
    settings = TaskHubSettings(task_hub="GoodHub", connection_string=f"AccountName=acme;AccountKey={KEY}")
    for text in (repr(settings), str(settings), settings.describe(), repr(settings.storage_account())):
        assert KEY not in text
    assert "acme" in settings.describe()


def test_environment_variables_of_functions_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DURABLEHUB_TASK_HUB", "EnvHub")
    monkeypatch.setenv("DURABLEHUB_PARTITION_COUNT", "8")
    settings = TaskHubSettings()
    assert settings.task_hub == "EnvHub" and settings.partition_count == 8
    assert settings.storage_account().account_name == "devstoreaccount1"


def test_identity_based_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "prodacct")
    monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
    monkeypatch.setenv("AzureWebJobsStorage__clientId", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", "https://custom-queue.example/prodacct")
    settings = TaskHubSettings(task_hub="IdHub")
    account = settings.storage_account()
    assert settings.uses_identity and settings.credential == "managedidentity"
    assert settings.client_id == "11111111-2222-3333-4444-555555555555"
    assert account.blob_url == "https://prodacct.blob.core.windows.net"
    assert account.queue_url == "https://custom-queue.example/prodacct"
    assert account.auth_kind == "token credential"


def test_no_account_at_all_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage"):
        TaskHubSettings(task_hub="GoodHub")


def test_unknown_credential_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unsupported credential"):
        TaskHubSettings(task_hub="GoodHub", account_name="a", credential="password")


# ------------------------------------------------------------------ SAS tokens (issue 10, item 12)


@pytest.mark.parametrize(
    "values",
    [
        {"connection_string": f"AccountName=acme;SharedAccessSignature={SAS}"},
        {
            "connection_string": "BlobEndpoint=https://b.example/acct;QueueEndpoint=https://q.example/acct;"
            f"TableEndpoint=https://t.example/acct;SharedAccessSignature=?{SAS}"
        },
    ],
)
def test_a_sas_connection_string_is_never_shown(values: dict[str, str]) -> None:
    settings = TaskHubSettings(task_hub="GoodHub", **values)
    shown = [repr(settings), str(settings), settings.describe(), repr(settings.storage_account())]
    assert all("TOPSECRET" not in text and "sig=" not in text for text in shown), shown
    assert "via SAS token" in settings.describe()


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        (
            {
                "connection_string": f"AccountName=acme;AccountKey={KEY};BlobEndpoint=https://acme.example/?{SAS}"
            },
            "BlobEndpoint",
        ),
        (
            {"blob_service_uri": f"https://acme.blob.core.windows.net/?{SAS}"},
            "AzureWebJobsStorage__blobServiceUri",
        ),
        (
            {"account_name": "acme", "queue_service_uri": f"https://acme.example/q?{SAS}"},
            "AzureWebJobsStorage__queueServiceUri",
        ),
        (
            {
                "connection_string": f"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1/?{SAS}"
            },
            "DevelopmentStorageProxyUri",
        ),
    ],
)
def test_a_sas_in_an_endpoint_url_is_refused_without_showing_it(values: dict[str, str], setting: str) -> None:
    # Kept, the token would be in the worker's start-up log, in reprs, and in the blob URLs that
    # the Instances table stores for large inputs and outputs.
    with pytest.raises(ConfigurationError, match=f"{setting} must not have a query string") as info:
        TaskHubSettings(task_hub="GoodHub", **values)
    assert "TOPSECRET" not in str(info.value) and "sig=" not in str(info.value)
    assert KEY not in str(info.value)


def test_the_worker_start_up_log_has_no_sas(azurite, caplog: pytest.LogCaptureFixture) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    import durablehub as dh
    from durablehub.taskhub.accounts import DEV_ACCOUNT_NAME
    from tests.conftest import new_hub_name

    account = parse_connection_string(azurite.connection_string)
    sas = generate_account_sas(
        DEV_ACCOUNT_NAME,
        DEV_ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True, update=True, process=True
        ),
        expiry=datetime.now(UTC) + timedelta(hours=1),
        services="bqt",
    )
    signature = [part for part in sas.split("&") if part.startswith("sig=")][0].removeprefix("sig=")
    connection = (
        f"BlobEndpoint={account.blob_url};QueueEndpoint={account.queue_url};"
        f"TableEndpoint={account.table_url};SharedAccessSignature={sas}"
    )
    settings = TaskHubSettings(task_hub=new_hub_name(), connection_string=connection)
    caplog.set_level("DEBUG", logger="durablehub")
    with dh.Worker(dh.App(), settings):
        pass
    started = [r.getMessage() for r in caplog.records if " started on " in r.getMessage()]
    assert len(started) == 1 and "via SAS token" in started[0], started
    assert all(signature not in r.getMessage() and "sig=" not in r.getMessage() for r in caplog.records)


# --------------------------------------------------------- plain HTTP endpoints (issue 10, item 12)


@pytest.mark.parametrize(
    ("values", "endpoint"),
    [
        (
            {"connection_string": f"DefaultEndpointsProtocol=http;AccountName=acme;AccountKey={KEY}"},
            "http://acme.blob.core.windows.net",
        ),
        (
            {
                "connection_string": f"AccountName=dev;AccountKey={KEY};BlobEndpoint=http://10.0.0.5:10000/dev;"
                "QueueEndpoint=https://10.0.0.5:10001/dev;TableEndpoint=https://10.0.0.5:10002/dev"
            },
            "http://10.0.0.5:10000",
        ),
        (
            {
                "connection_string": f"BlobEndpoint=https://azurite/dev;QueueEndpoint=http://azurite:10001/dev;"
                f"TableEndpoint=https://azurite/dev;SharedAccessSignature={SAS}"
            },
            "http://azurite:10001",
        ),
        (
            {"account_name": "acme", "table_service_uri": "http://storage.internal/acme"},
            "http://storage.internal",
        ),
    ],
)
def test_plain_http_to_another_host_is_refused(
    values: dict[str, str], endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURABLEHUB_ALLOW_INSECURE_HTTP", raising=False)
    with pytest.raises(ConfigurationError, match="plain HTTP") as info:
        TaskHubSettings(task_hub="GoodHub", **values)
    message = str(info.value)
    assert endpoint in message and "DURABLEHUB_ALLOW_INSECURE_HTTP" in message
    assert KEY not in message and "TOPSECRET" not in message
    allowed = TaskHubSettings(task_hub="GoodHub", allow_insecure_http=True, **values)
    assert allowed.allow_insecure_http


def test_insecure_http_can_be_allowed_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLEHUB_ALLOW_INSECURE_HTTP", "true")
    settings = TaskHubSettings(
        task_hub="GoodHub", account_name="a", blob_service_uri="http://azurite:10000/a"
    )
    assert settings.storage_account().blob_url == "http://azurite:10000/a"


@pytest.mark.parametrize(
    "connection",
    [
        "UseDevelopmentStorage=true",
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://10.1.2.3",  # the public emulator key
        f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1/a;"
        "QueueEndpoint=http://127.0.0.2:2/a;TableEndpoint=http://localhost:3/a",
        f"AccountName=a;AccountKey={KEY};BlobEndpoint=http://[::1]:1/a;QueueEndpoint=http://LOCALHOST/a;"
        "TableEndpoint=https://t.example/a",
    ],
)
def test_loopback_and_development_storage_stay_allowed(
    connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURABLEHUB_ALLOW_INSECURE_HTTP", raising=False)
    assert not TaskHubSettings(task_hub="GoodHub", connection_string=connection).allow_insecure_http
