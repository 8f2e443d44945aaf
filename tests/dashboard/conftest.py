"""A hub with an in-process worker, and the management app with its dashboard, driven through
httpx's ASGI transport; the browser tests (``test_browser.py``) run ``durablehub serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.http import HttpSettings, create_app
from tests.e2e.apps import app as e2e_app
from tests.http.conftest import KEY, durable, http_hub_settings, running_worker

__all__ = ["durable", "http_hub_settings", "running_worker"]  # fixtures shared with tests/http


async def sign_in(client: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    await client.get("/dashboard/login")
    return await client.post(
        "/dashboard/login", data={"key": key, "csrf": client.cookies.get("durablehub_csrf") or ""}
    )


def dashboard_client(durable: AsyncDurableClient, **settings: object) -> httpx.AsyncClient:
    http_settings = HttpSettings(key=KEY, allowed_hosts=["testserver"], **settings)
    app = create_app(http_settings=http_settings, client=durable, worker_app=e2e_app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture(scope="module")
async def browser(durable: AsyncDurableClient) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in to the dashboard, as a browser would be after the login form."""
    async with dashboard_client(durable) as client:
        assert (await sign_in(client)).status_code == 303
        yield client


def csrf(client: httpx.AsyncClient) -> str:
    return client.cookies.get("durablehub_csrf") or ""
