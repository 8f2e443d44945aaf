"""Checks before any route: without authentication only loopback callers are served (and
``serve`` will not listen further), and a browser on another site cannot raise an event or
terminate an instance with a form post or a no-cors fetch, even where no credentials are needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from durablehub.async_client import AsyncDurableClient
from durablehub.cli.main import app as cli
from durablehub.http import OPENAPI_PATH, HttpSettings, create_app
from tests.http.conftest import API, KEY, new_id, wait_for_status
from tests.http.test_auth import OFFLINE

FORM = {"content-type": "application/x-www-form-urlencoded"}


# ------------------------------------------------------------------------- auth=none: loopback


async def test_without_auth_only_loopback_callers_are_served() -> None:
    app = create_app(OFFLINE, HttpSettings(auth="none"))
    for client, expected in ((("127.0.0.1", 5000), 200), (("::1", 5000), 200), (("203.0.113.7", 5000), 403)):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            response = await http.get(OPENAPI_PATH)
        assert response.status_code == expected, (client, response.text)
        if expected == 403:
            assert "DURABLEHUB_HTTP_AUTH=none" in response.json()["error"]
    # With authentication on, a remote caller is simply authenticated.
    keyed = create_app(OFFLINE, HttpSettings(key=KEY))
    transport = httpx.ASGITransport(app=keyed, client=("203.0.113.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get(OPENAPI_PATH, headers={"x-functions-key": KEY})).status_code == 200


def test_serve_without_auth_stays_on_loopback(
    serve_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLEHUB_HTTP_AUTH", "none")
    monkeypatch.setenv("DURABLEHUB_HTTP_ALLOWED_HOSTS", "*")
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and serve_calls == [], refused.output
    assert "DURABLEHUB_HTTP_AUTH=none" in refused.output and "loopback" in refused.output
    assert CliRunner().invoke(cli, ["serve", "--host", "127.0.0.1"]).exit_code == 0
    assert [call["host"] for call in serve_calls] == ["127.0.0.1"]


# ------------------------------------------------------------------------ cross-site requests


@pytest.fixture
async def open_api(durable: AsyncDurableClient) -> AsyncIterator[httpx.AsyncClient]:
    """The API without authentication, as on a developer's machine, where a web page the
    developer visits is the attacker."""
    app = create_app(http_settings=HttpSettings(auth="none"), client=durable)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:7071"
    ) as client:
        yield client


@pytest.mark.azurite
async def test_a_cross_site_form_post_changes_nothing(
    open_api: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration("approval", input=60, instance_id=new_id("csrf"))
    await wait_for_status(open_api, iid, "Running")
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    attempts = [
        # An HTML form: a form content type, with or without fields.
        (f"{API}/instances/{iid}/terminate", {"headers": {**FORM, **evil}}),
        (f"{API}/instances/{iid}/raiseEvent/Approval", {"headers": {**FORM, **evil}, "content": b"x=1"}),
        # The same form from an old browser that sends neither Origin nor Sec-Fetch-Site.
        (f"{API}/instances/{iid}/terminate", {"headers": FORM}),
        (
            f"{API}/instances/{iid}/raiseEvent/Approval",
            {"headers": {"content-type": "text/plain"}, "content": b"1"},
        ),
        # fetch(url, {method: "POST", mode: "no-cors"}): no body, no content type.
        (f"{API}/instances/{iid}/terminate", {"headers": evil}),
        (f"{API}/instances/{iid}/terminate", {"headers": {"Origin": "null"}}),
        (f"{API}/instances/{iid}/suspend", {"headers": {"Sec-Fetch-Site": "same-site"}}),
        (
            f"{API}/orchestrators/approval",
            {"headers": {**evil, "content-type": "application/json"}, "json": 1},
        ),
    ]
    for url, kwargs in attempts:
        refused = await open_api.post(url, **kwargs)
        assert refused.status_code in (400, 403), (url, kwargs, refused.text)
    state = await durable.get_orchestration_state(iid)
    assert state is not None and state.runtime_status.name == "RUNNING"

    # Programs (no Origin, no Sec-Fetch-Site) and same-origin pages are served.
    same = {"Origin": "http://127.0.0.1:7071", "Sec-Fetch-Site": "same-origin"}
    raised = await open_api.post(f"{API}/instances/{iid}/raiseEvent/Approval", json=True, headers=same)
    assert raised.status_code == 202, raised.text
    assert (await wait_for_status(open_api, iid, "Completed"))["output"] == {"approved": True}


async def test_cross_site_refusals_say_why() -> None:
    app = create_app(OFFLINE, HttpSettings(auth="none"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        cross = await http.post(f"{API}/instances/x/terminate", headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert "https://evil.example" in cross.json()["error"] and "cross-site" in cross.json()["error"]
        form = await http.post(f"{API}/instances/x/terminate", headers=FORM)
        assert form.status_code == 400
        assert "application/json" in form.json()["error"]
        assert "application/x-www-form-urlencoded" in form.json()["error"]
