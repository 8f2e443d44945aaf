"""The token signing keys: no key is trusted forever (a key removed from the JWKS document stops
being accepted once the cached set expires), a rolled-over key is fetched, unknown key ids
cannot make the server fetch the document on every request, and the PyJWT floor has all that.

PyJWT's caches read ``time.monotonic``; the tests move a clock of their own instead of sleeping.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from durablehub.http import OPENAPI_PATH, HttpSettings, create_app
from durablehub.http.tokens import JWKS_CACHE_SECONDS, JWKS_REFETCH_COOLDOWN_SECONDS
from tests.http.entra import ADMIN_ROLE, AUDIENCE, ISSUER, KID, JwksServer, bearer, new_key, token
from tests.http.test_auth import OFFLINE

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    fake = types.SimpleNamespace(monotonic=clock.monotonic, time=clock.monotonic)
    for module in (jwt.jwk_set_cache, jwt.api_jwk, jwt.jwks_client):
        monkeypatch.setattr(module, "time", fake)
    return clock


@pytest.fixture
def old_key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture
def jwks(old_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer({KID: old_key})
    yield server
    server.close()


@pytest.fixture
def http(jwks: JwksServer) -> httpx.AsyncClient:
    settings = HttpSettings(
        auth="entra",
        entra_audience=AUDIENCE,
        entra_issuer=ISSUER,
        entra_jwks_url=jwks.url,
        entra_roles=[ADMIN_ROLE],
    )
    app = create_app(OFFLINE, settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def status(http: httpx.AsyncClient, value: str) -> int:
    return (await http.get(OPENAPI_PATH, headers=bearer(value))).status_code


async def test_a_removed_key_is_not_trusted_forever(
    http: httpx.AsyncClient, jwks: JwksServer, old_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    async with http:
        assert await status(http, token(old_key)) == 200
        new = new_key()
        jwks.keys = {"test-key-2": new}  # the old key is withdrawn (compromised, rolled over)
        assert await status(http, token(old_key)) == 200  # the cached set is still fresh
        clock.now += JWKS_CACHE_SECONDS + 1
        refused = await http.get(OPENAPI_PATH, headers=bearer(token(old_key)))
        assert refused.status_code == 401 and "not signed by a known key" in refused.json()["error"]
        assert await status(http, token(new, kid="test-key-2")) == 200


async def test_rollover_and_unknown_key_ids(
    http: httpx.AsyncClient, jwks: JwksServer, old_key: rsa.RSAPrivateKey, clock: Clock
) -> None:
    async with http:
        assert await status(http, token(old_key)) == 200
        assert jwks.fetches == 1
        forged = new_key()
        for n in range(20):  # a flood of made-up key ids costs no fetch while cooling down
            assert await status(http, token(forged, kid=f"made-up-{n}")) == 401
        assert jwks.fetches == 1
        rolled = new_key()
        jwks.keys = {KID: old_key, "rolled": rolled}
        clock.now += JWKS_REFETCH_COOLDOWN_SECONDS + 1
        assert await status(http, token(rolled, kid="rolled")) == 200  # one fetch finds the new key
        assert jwks.fetches == 2
        for n in range(20):
            assert await status(http, token(forged, kid=f"made-up-again-{n}")) == 401
        assert jwks.fetches == 2


async def test_a_deeply_nested_token_is_a_401(http: httpx.AsyncClient, jwks: JwksServer) -> None:
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = segment(json.dumps({"alg": "RS256", "kid": KID, "typ": "JWT"}).encode())
    nested = segment(b"[" * 5000 + b"]" * 5000)
    async with http:
        assert await status(http, f"{header}.{nested}.{segment(b'sig')}") == 401


def test_the_pyjwt_floor_has_the_cooldown_and_expiring_keys() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pyjwt,) = [r for r in project["project"]["optional-dependencies"]["http"] if r.startswith("pyjwt")]
    floor = re.fullmatch(r"pyjwt\[crypto\]>=(\d+)\.(\d+)(?:\.\d+)?", pyjwt)
    assert floor is not None, pyjwt
    # 2.14: a refetch cooldown for unknown kids; 2.15: a nested payload is a DecodeError.
    assert (int(floor[1]), int(floor[2])) >= (2, 15), pyjwt
