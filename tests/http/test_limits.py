"""Request bodies have a size limit: a larger body is a 413 naming the limit, found from the
Content-Length header or by counting a streamed body, which is never read to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.errors import ConfigurationError
from durablehub.http import HttpSettings, create_app
from tests.e2e.apps import app as e2e_app
from tests.http.conftest import API, KEY, new_id

pytestmark = pytest.mark.azurite

LIMIT = 1024
CHUNK = b" " * 256  # JSON whitespace: a valid body as long as the limit allows it


@pytest.fixture
async def small(durable: AsyncDurableClient) -> AsyncIterator[httpx.AsyncClient]:
    settings = HttpSettings(key=KEY, max_body_bytes=LIMIT)
    app = create_app(http_settings=settings, client=durable, worker_app=e2e_app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        headers={"x-functions-key": KEY},
    ) as client:
        yield client


def state_changing_routes(iid: str) -> list[str]:
    return [
        f"{API}/orchestrators/hello_cities/{iid}",
        f"{API}/instances/{iid}/raiseEvent/Approval",
        f"{API}/entities/counter/{iid}?op=add",
    ]


def too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert f"{LIMIT} bytes" in error and "DURABLEHUB_HTTP_MAX_BODY_BYTES" in error, error


async def test_a_declared_length_over_the_limit_is_413(
    small: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = new_id("big")
    body = b'"' + b"x" * LIMIT + b'"'
    for url in state_changing_routes(iid):
        too_large(await small.post(url, content=body, headers={"content-type": "application/json"}))
    assert await durable.get_orchestration_state(iid) is None  # nothing was started


async def test_a_streamed_body_over_the_limit_is_413_and_not_read_to_its_end(
    small: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = new_id("chunked")
    for url in state_changing_routes(iid):
        sent = 0

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
            nonlocal sent
            yield b"1"
            for _ in range(1000):
                sent += 1
                yield CHUNK

        too_large(await small.post(url, content=chunks(), headers={"content-type": "application/json"}))
        assert sent <= LIMIT // len(CHUNK) + 1, f"{url}: {sent} chunks were read"
    assert await durable.get_orchestration_state(iid) is None


async def test_a_body_within_the_limit_is_accepted(
    small: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = new_id("fits")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        yield CHUNK
        yield b"]"

    started = await small.post(
        f"{API}/orchestrators/hello_cities/{iid}",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert started.status_code == 202, started.text
    assert (await durable.get_orchestration_state(iid)) is not None


def test_the_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HttpSettings(key=KEY).max_body_bytes == 4 * 1024 * 1024
    monkeypatch.setenv("DURABLEHUB_HTTP_MAX_BODY_BYTES", "2048")
    assert HttpSettings(key=KEY).max_body_bytes == 2048
    with pytest.raises(ConfigurationError, match="max_body_bytes"):
        HttpSettings(key=KEY, max_body_bytes=0)
