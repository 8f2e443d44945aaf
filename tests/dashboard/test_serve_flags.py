"""``durablehub serve`` says where the dashboard is, and ``--read-only`` makes the whole server
(API and dashboard) refuse writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from durablehub.cli.main import app as cli
from tests.http.conftest import API, KEY


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append(app))
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DURABLEHUB_TASK_HUB", "ServeHub")
    monkeypatch.setenv("DURABLEHUB_HTTP_KEY", KEY)
    for name in ("ALLOWED_HOSTS", "BASE_URL", "AUTH", "READ_ONLY", "DASHBOARD"):
        monkeypatch.delenv(f"DURABLEHUB_HTTP_{name}", raising=False)
    return apps


async def post_terminate(app: Any) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        answer = await http.post(f"{API}/instances/x/terminate", headers={"x-functions-key": KEY})
        return answer.status_code


async def test_serve_prints_the_dashboard_url_and_read_only_refuses_writes(served: list[Any]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "7123", "--read-only"])
    assert result.exit_code == 0, result.output
    assert "dashboard: http://127.0.0.1:7123/dashboard/" in result.output
    assert "read-only" in result.output
    assert await post_terminate(served[0]) == 403


async def test_the_dashboard_can_be_turned_off(served: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLEHUB_HTTP_DASHBOARD", "false")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0 and "dashboard" not in result.output
    transport = httpx.ASGITransport(app=served[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get("/dashboard/login")).status_code == 404
