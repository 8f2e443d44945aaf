"""The async-HTTP example of the README, run as written: it checks the caller's role before it
starts anything, and what it returns carries no key and points at the configured public URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from durablehub.async_client import AsyncDurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.http.entra import ADMIN_ROLE, AUDIENCE, ISSUER, KID, JwksServer, bearer, new_key, token

pytestmark = pytest.mark.azurite
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## The HTTP API") :]
    match = re.search(r"In your own Starlette/FastAPI app.*?```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's async-HTTP example is gone"
    return match[1]


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture
def example_env(
    hub: TaskHub, signing_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TaskHubSettings]:
    jwks = JwksServer({KID: signing_key})
    settings = hub.settings
    for name, value in {
        "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
        "DURABLEHUB_TASK_HUB": settings.task_hub,
        "DURABLEHUB_HTTP_AUTH": "entra",
        "DURABLEHUB_HTTP_ENTRA_AUDIENCE": AUDIENCE,
        "DURABLEHUB_HTTP_ENTRA_ISSUER": ISSUER,
        "DURABLEHUB_HTTP_ENTRA_JWKS_URL": jwks.url,
        "DURABLEHUB_HTTP_ENTRA_ROLES": ADMIN_ROLE,
        "DURABLEHUB_HTTP_BASE_URL": "https://orders.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    yield settings
    jwks.close()


async def test_the_readme_starter_checks_the_caller_and_leaks_no_key(
    example_env: TaskHubSettings, signing_key: rsa.RSAPrivateKey
) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_example(), str(README), "exec"), namespace)  # noqa: S102
    client: AsyncDurableClient = namespace["client"]
    try:
        transport = httpx.ASGITransport(app=namespace["api"])
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as http:
            anonymous = await http.post("/orders", json={"item": "book"})
            admin = await http.post("/orders", json={"item": "book"}, headers=bearer(token(signing_key)))
            assert (anonymous.status_code, admin.status_code) == (401, 403)
            assert await client.get_all_orchestration_states() == []  # nothing started
            customer = token(signing_key, sub="alice", roles=["Orders.Place"])
            placed = await http.post("/orders", json={"item": "book"}, headers=bearer(customer))
        assert placed.status_code == 202, placed.text
        assert "code=" not in placed.text
        assert placed.headers["Location"].startswith(
            "https://orders.example.com/runtime/webhooks/durabletask/"
        )
        state = await client.get_orchestration_state(placed.json()["id"])
        assert state is not None and state.name == "ProcessOrder"
        assert (
            state.serialized_input is not None and json.loads(state.serialized_input)["customer"] == "alice"
        )
    finally:
        await client.close()
