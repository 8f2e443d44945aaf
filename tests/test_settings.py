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
