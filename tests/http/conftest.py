"""One task hub, one in-process worker and one management app for the HTTP tests of a module.

The app is driven through httpx's ASGITransport (no sockets); ``test_serve.py`` runs the real
``durablehub serve`` instead. Tests use their own instance ids, so they can share the hub.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from durablehub.async_client import AsyncDurableClient
from durablehub.http import HttpSettings, create_app
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.worker import Worker
from tests.conftest import StorageEmulator, new_hub_name
from tests.e2e.apps import app as e2e_app

KEY = "test-key-0123456789abcdef"
API = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def http_hub_settings(azurite: StorageEmulator) -> TaskHubSettings:
    return TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, partition_count=2
    )


@pytest.fixture(scope="module")
async def running_worker(http_hub_settings: TaskHubSettings) -> AsyncIterator[Worker]:
    async with Worker(e2e_app, http_hub_settings) as worker:
        yield worker
    async with AsyncTaskHub(http_hub_settings) as hub:
        await hub.delete()


@pytest.fixture(scope="module")
async def durable(
    http_hub_settings: TaskHubSettings, running_worker: Worker
) -> AsyncIterator[AsyncDurableClient]:
    async with AsyncDurableClient(http_hub_settings) as client:
        yield client


@pytest.fixture(scope="module")
async def http(durable: AsyncDurableClient) -> AsyncIterator[httpx.AsyncClient]:
    """Requests carry the key in the x-functions-key header unless a test says otherwise."""
    settings = HttpSettings(key=KEY, allowed_hosts=["testserver"])
    app = create_app(http_settings=settings, client=durable, worker_app=e2e_app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"x-functions-key": KEY}
    ) as client:
        yield client


@pytest.fixture
def serve_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``uvicorn.run`` replaced: what serve would have served, without serving it."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DURABLEHUB_TASK_HUB", "ServeHub")
    monkeypatch.setenv("DURABLEHUB_HTTP_KEY", KEY)
    for name in ("ALLOWED_HOSTS", "BASE_URL", "AUTH"):
        monkeypatch.delenv(f"DURABLEHUB_HTTP_{name}", raising=False)
    return calls


def new_id(prefix: str = "http") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def poll_until_done(http: httpx.AsyncClient, url: str, timeout: float = 30) -> httpx.Response:
    """GET ``url`` while it answers 202, as a client of the async HTTP API pattern does."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(url)
        if response.status_code != 202:
            return response
        assert "Retry-After" in response.headers and "Location" in response.headers
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still answers 202 after {timeout} s: {response.json()}")
        await asyncio.sleep(0.1)


async def wait_for_status(
    http: httpx.AsyncClient, iid: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = (await http.get(f"{API}/instances/{iid}")).json()
        if body.get("runtimeStatus") == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(
                f"instance {iid} is {body.get('runtimeStatus')}, not {status}, after {timeout} s"
            )
        await asyncio.sleep(0.1)
