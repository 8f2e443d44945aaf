"""Authentication of the management API: keys (no key, wrong key, right key in the query or the
header) and Entra ID bearer tokens checked against a JWKS document served on loopback by a
locally generated key pair (right token, expired, wrongly signed, other audience, other issuer)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from durablehub.errors import ConfigurationError
from durablehub.http import OPENAPI_PATH, HttpSettings, create_app
from durablehub.settings import TaskHubSettings
from tests.http.conftest import API, KEY, new_id
from tests.http.entra import ADMIN_ROLE, AUDIENCE, ISSUER, KID, JwksServer, new_key, token

# Storage is never reached by the openapi route; the settings only need to parse.
OFFLINE = TaskHubSettings(connection_string="UseDevelopmentStorage=true")


def offline_client(http_settings: HttpSettings) -> httpx.AsyncClient:
    app = create_app(OFFLINE, http_settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


# ---------------------------------------------------------------------------------------- keys


async def test_every_route_needs_the_key() -> None:
    async with offline_client(HttpSettings(key=KEY)) as http:
        routes = [
            ("POST", f"{API}/orchestrators/hello_cities"),
            ("POST", f"{API}/orchestrators/hello_cities/some-id"),
            ("GET", f"{API}/instances/some-id"),
            ("GET", f"{API}/instances"),
            ("DELETE", f"{API}/instances/some-id"),
            ("DELETE", f"{API}/instances?createdTimeFrom=2024-01-01T00:00:00Z"),
            ("POST", f"{API}/instances/some-id/raiseEvent/Approval"),
            *(
                ("POST", f"{API}/instances/some-id/{op}")
                for op in ("terminate", "suspend", "resume", "rewind", "restart")
            ),
            ("GET", f"{API}/entities/account/some-key"),
            ("GET", f"{API}/entities/account"),
            ("POST", f"{API}/entities/account/some-key?op=deposit"),
            ("DELETE", f"{API}/entities/account/some-key?op=deposit"),
            ("GET", OPENAPI_PATH),
        ]
        for method, url in routes:
            missing = await http.request(method, url)
            assert missing.status_code == 401, (method, url, missing.text)
            assert "a key is required" in missing.json()["error"]
            wrong = await http.request(method, url, headers={"x-functions-key": KEY[:-1] + "X"})
            assert wrong.status_code == 401 and wrong.json() == {"error": "the key is not valid"}
            assert KEY[:-1] not in wrong.text
        assert (await http.get(f"{OPENAPI_PATH}?code=wrong-key-wrong-key")).status_code == 401


async def test_the_right_key_in_the_query_or_the_header() -> None:
    async with offline_client(HttpSettings(key=KEY)) as http:
        assert (await http.get(OPENAPI_PATH, params={"code": KEY})).status_code == 200
        assert (await http.get(OPENAPI_PATH, headers={"x-functions-key": KEY})).status_code == 200


@pytest.mark.azurite
async def test_the_right_key_reaches_the_hub(http: httpx.AsyncClient) -> None:
    iid = new_id("unknown")
    by_query = await http.get(f"{API}/instances/{iid}", params={"code": KEY}, headers={"x-functions-key": ""})
    assert by_query.status_code == 404
    assert (await http.get(f"{API}/instances/{iid}")).status_code == 404  # the header


def test_settings_refuse_a_missing_or_short_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLEHUB_HTTP_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="needs a key: set DURABLEHUB_HTTP_KEY"):
        HttpSettings()
    with pytest.raises(ConfigurationError, match="at least 16 characters") as error:
        HttpSettings(key="short-secret")
    assert "short-secret" not in str(error.value)
    monkeypatch.setenv("DURABLEHUB_HTTP_KEY", KEY)
    assert HttpSettings().url_key is None and KEY not in repr(HttpSettings())  # keys in URLs: opt-in
    assert HttpSettings(key_in_urls=True).url_key == KEY
    assert HttpSettings(auth="none", key_in_urls=True).url_key is None
    with pytest.raises(ConfigurationError, match="ENTRA_AUDIENCE"):
        HttpSettings(auth="entra", entra_tenant_id="t")


async def test_auth_can_be_turned_off() -> None:
    async with offline_client(HttpSettings(auth="none")) as http:
        assert (await http.get(OPENAPI_PATH)).status_code == 200


# ------------------------------------------------------------------------------------ Entra ID


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    server = JwksServer({KID: signing_key})
    yield server.url
    server.close()


@pytest.fixture
def entra(jwks_url: str) -> httpx.AsyncClient:
    return offline_client(
        HttpSettings(
            auth="entra",
            entra_audience=AUDIENCE,
            entra_issuer=ISSUER,
            entra_jwks_url=jwks_url,
            entra_roles=[ADMIN_ROLE],
        )
    )


async def test_a_valid_token_is_accepted(entra: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey) -> None:
    async with entra as http:
        ok = await http.get(OPENAPI_PATH, headers={"Authorization": f"Bearer {token(signing_key)}"})
        assert ok.status_code == 200
        assert set(ok.json()["components"]["securitySchemes"]) == {"entraId"}
        # A key is no substitute for a token in this mode.
        assert (await http.get(OPENAPI_PATH, headers={"x-functions-key": KEY})).status_code == 401


async def test_invalid_tokens_are_refused(entra: httpx.AsyncClient, signing_key: rsa.RSAPrivateKey) -> None:
    other_key = new_key()
    hour_ago = int(time.time()) - 3600
    cases = {
        "a bearer token is required": None,
        "the token has expired": token(signing_key, iat=hour_ago - 600, nbf=hour_ago - 600, exp=hour_ago),
        "the token's signature is not valid": token(other_key),  # signed by another key, same kid
        "the token is not signed by a known key": token(other_key, kid="unknown-kid"),
        "the token is for another audience": token(signing_key, aud="api://someone-else"),
        "the token comes from another issuer": token(signing_key, iss="https://sts.windows.net/other/"),
        "the token is not valid": "not.a.jwt",
    }
    async with entra as http:
        for reason, bearer in cases.items():
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            refused = await http.get(OPENAPI_PATH, headers=headers)
            assert refused.status_code == 401, (reason, refused.text)
            assert refused.json()["error"].startswith(reason), refused.json()
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_tenant_defaults() -> None:
    settings = HttpSettings(
        auth="entra", entra_tenant_id="contoso", entra_audience=AUDIENCE, entra_roles=[ADMIN_ROLE]
    )
    assert settings.issuer == "https://login.microsoftonline.com/contoso/v2.0"
    assert settings.jwks_url == "https://login.microsoftonline.com/contoso/discovery/v2.0/keys"


async def test_wrong_keys_are_rate_limited_per_client() -> None:
    """100 wrong keys in a row from one address: 429 with Retry-After after the limit, even for
    the right key from that address; the right key from another address is unaffected."""
    app = create_app(OFFLINE, HttpSettings(key=KEY))

    def caller(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    async with caller("192.0.2.7") as guesser, caller("192.0.2.8") as owner:
        answers = [
            await guesser.get(OPENAPI_PATH, headers={"x-functions-key": f"guess-{i:04d}-0123456789"})
            for i in range(100)
        ]
        codes = [a.status_code for a in answers]
        limited = codes.index(429) if 429 in codes else len(codes)
        assert set(codes[:limited]) == {401} and set(codes[limited:]) == {429}, codes
        assert limited <= 20, codes
        refusal = answers[-1]
        assert 0 < int(refusal.headers["Retry-After"]) <= 60
        assert "too many wrong keys" in refusal.json()["error"]
        by_query = await guesser.get(f"{OPENAPI_PATH}?code={KEY}")
        assert by_query.status_code == 429  # a guess that happens to be right tells it nothing
        assert (await owner.get(OPENAPI_PATH, headers={"x-functions-key": KEY})).status_code == 200
        mistake = await owner.get(OPENAPI_PATH, headers={"x-functions-key": "wrong-0123456789"})
        assert mistake.status_code == 401
