"""Management URLs: no key in them unless asked for, and a base URL that never comes from a Host
header nobody configured (the routes, ``create_check_status_response`` and ``durablehub serve``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from durablehub.async_client import AsyncDurableClient
from durablehub.cli.main import app as cli
from durablehub.errors import ConfigurationError
from durablehub.http import HttpSettings, create_app, create_check_status_response
from tests.http.conftest import API, KEY, wait_for_status

URL_KEYS = (
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "rewindPostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
)


def carries_no_key(response: httpx.Response) -> None:
    assert KEY not in response.text and "code=" not in response.text, response.text
    assert all(KEY not in value for value in response.headers.values()), response.headers


def starter(http_settings: HttpSettings | None) -> FastAPI:
    """A user's own app answering a start request with the check-status response (no storage:
    the instance id is made up, the response is what is tested)."""
    api = FastAPI()

    @api.post("/orders")
    async def place_order(request: Request) -> object:
        return create_check_status_response(
            request, "order-1", task_hub="OrdersHub", http_settings=http_settings
        )

    return api


def client_for(app: FastAPI, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


# ------------------------------------------------------------------------------ no key by default


@pytest.mark.azurite
async def test_a_default_check_status_response_carries_no_key(
    http: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    """Through the real routes: start, restart, and a running instance's Location."""
    started = await http.post(f"{API}/orchestrators/approval", json=60)
    assert started.status_code == 202
    carries_no_key(started)
    iid = started.json()["id"]
    assert parse_qs(urlsplit(started.json()["statusQueryGetUri"]).query) == {
        "taskHub": [durable.settings.task_hub]
    }

    await wait_for_status(http, iid, "Running")
    by_query = await http.get(f"{API}/instances/{iid}", params={"code": KEY}, headers={"x-functions-key": ""})
    assert by_query.status_code == 202
    carries_no_key(by_query)
    assert by_query.headers["Location"] == f"http://testserver{API}/instances/{iid}"

    assert (await http.post(f"{API}/instances/{iid}/terminate")).status_code == 202
    await wait_for_status(http, iid, "Terminated")
    restarted = await http.post(f"{API}/instances/{iid}/restart")
    assert restarted.status_code == 202
    carries_no_key(restarted)
    assert (await http.post(f"{API}/instances/{iid}/terminate")).status_code in (202, 410)


async def test_create_check_status_response_carries_no_key_by_default() -> None:
    settings = HttpSettings(key=KEY, base_url="https://orders.example.com")
    async with client_for(starter(settings)) as http:
        accepted = await http.post("/orders")
    assert accepted.status_code == 202
    carries_no_key(accepted)
    assert accepted.headers["Location"] == (
        f"https://orders.example.com{API}/instances/order-1?taskHub=OrdersHub"
    )


async def test_keys_in_urls_are_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLEHUB_HTTP_KEY_IN_URLS", "true")
    settings = HttpSettings(key=KEY, base_url="https://orders.example.com")
    assert settings.key_in_urls
    async with client_for(starter(settings)) as http:
        body = (await http.post("/orders")).json()
    assert all(parse_qs(urlsplit(body[name]).query)["code"] == [KEY] for name in URL_KEYS)


# --------------------------------------------------------------------------- the base URL and Host


async def test_the_base_url_is_not_taken_from_an_untrusted_host() -> None:
    async with client_for(starter(HttpSettings(key=KEY)), host="attacker.example") as http:
        with pytest.raises(ConfigurationError, match="DURABLEHUB_HTTP_BASE_URL") as refused:
            await http.post("/orders")
    assert "DURABLEHUB_HTTP_ALLOWED_HOSTS" in str(refused.value)
    async with client_for(starter(None), host="attacker.example") as http:
        with pytest.raises(ConfigurationError, match="DURABLEHUB_HTTP_BASE_URL"):
            await http.post("/orders")


async def test_a_configured_base_url_wins_over_the_host_header() -> None:
    settings = HttpSettings(key=KEY, base_url="https://orders.example.com")
    async with client_for(starter(settings), host="orders.example.com") as http:
        response = await http.post("/orders", headers={"Host": "attacker.example"})
    assert all(response.json()[name].startswith("https://orders.example.com/") for name in URL_KEYS)


async def test_an_allowed_host_is_used() -> None:
    settings = HttpSettings(key=KEY, allowed_hosts=["orders.example.com", "*.orders.example.com"])
    for host in ("orders.example.com", "eu.orders.example.com:8443"):
        async with client_for(starter(settings), host=host) as http:
            response = await http.post("/orders")
        assert response.json()["statusQueryGetUri"].startswith(f"http://{host}{API}/"), response.text
    async with client_for(starter(None)) as http:  # loopback is trusted by default
        assert (await http.post("/orders")).json()["id"] == "order-1"


async def test_the_management_api_refuses_an_untrusted_host() -> None:
    from tests.http.test_auth import OFFLINE

    app = create_app(OFFLINE, HttpSettings(key=KEY))
    async with client_for(app, host="attacker.example") as http:
        refused = await http.get(f"{API}/openapi.json", headers={"x-functions-key": KEY})
    assert refused.status_code == 400
    assert "attacker.example" in refused.json()["error"]
    assert "DURABLEHUB_HTTP_ALLOWED_HOSTS" in refused.json()["error"]
    async with client_for(app, host="localhost:7071") as http:
        assert (await http.get(f"{API}/openapi.json", headers={"x-functions-key": KEY})).status_code == 200


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLEHUB_HTTP_ALLOWED_HOSTS", "orders.example.com, api.example.com")
    assert HttpSettings(key=KEY).allowed_hosts == ["orders.example.com", "api.example.com"]
    monkeypatch.delenv("DURABLEHUB_HTTP_ALLOWED_HOSTS")
    defaults = HttpSettings(key=KEY, base_url="https://orders.example.com:8443/api").trusted_hosts
    assert "orders.example.com" in defaults and "127.0.0.1" in defaults and "localhost" in defaults


def test_serve_on_every_interface_needs_the_public_host(
    serve_calls: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and serve_calls == []
    assert "DURABLEHUB_HTTP_ALLOWED_HOSTS" in refused.output and "DURABLEHUB_HTTP_BASE_URL" in refused.output
    monkeypatch.setenv("DURABLEHUB_HTTP_ALLOWED_HOSTS", "orders.example.com")
    served = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert served.exit_code == 0, served.output
    assert serve_calls == [{"host": "0.0.0.0", "port": 7071, "log_level": "info", "access_log": True}]
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0  # loopback: loopback names by default
