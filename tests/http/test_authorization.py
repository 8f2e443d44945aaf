"""Entra ID tokens are authorized, not only authenticated: the management API needs a configured
app role or scope (and, if configured, one of the allowed client applications), and an
application's own routes get the validated principal through ``require_principal``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI

from durablehub.errors import ConfigurationError
from durablehub.http import OPENAPI_PATH, HttpSettings, Principal, create_app, require_principal
from tests.http.conftest import API
from tests.http.entra import ADMIN_ROLE, AUDIENCE, ISSUER, KID, JwksServer, bearer, new_key, token
from tests.http.test_auth import OFFLINE

CLIENT_APP = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer({KID: signing_key})
    yield server
    server.close()


def entra_settings(jwks: JwksServer, **values: object) -> HttpSettings:
    return HttpSettings(
        auth="entra", entra_audience=AUDIENCE, entra_issuer=ISSUER, entra_jwks_url=jwks.url, **values
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


# ---------------------------------------------------------------------- the management API


async def test_a_token_without_the_role_is_refused(jwks: JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    app = create_app(OFFLINE, entra_settings(jwks, entra_roles=[ADMIN_ROLE]))
    async with client(app) as http:
        admin = await http.get(OPENAPI_PATH, headers=bearer(token(signing_key)))
        assert admin.status_code == 200
        status = admin.json()["paths"]["/runtime/webhooks/durabletask/instances/{instance_id}"]["get"]
        assert {"401", "403"} <= set(status["responses"])
        for claims in ({"roles": None}, {"roles": ["Orders.Read"]}, {"roles": None, "scp": ADMIN_ROLE}):
            refused = await http.get(OPENAPI_PATH, headers=bearer(token(signing_key, **claims)))
            assert refused.status_code == 403, (claims, refused.text)
            assert ADMIN_ROLE in refused.json()["error"]
            assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        # A token that fails validation stays a 401, whatever its roles.
        expired = token(signing_key, iat=1, nbf=1, exp=2)
        assert (await http.get(OPENAPI_PATH, headers=bearer(expired))).status_code == 401


async def test_a_scope_or_a_role(jwks: JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    settings = entra_settings(jwks, entra_roles=[ADMIN_ROLE], entra_scopes=["Hub.Manage"])
    async with client(create_app(OFFLINE, settings)) as http:
        delegated = token(signing_key, roles=None, scp="User.Read Hub.Manage")
        assert (await http.get(OPENAPI_PATH, headers=bearer(delegated))).status_code == 200
        assert (await http.get(OPENAPI_PATH, headers=bearer(token(signing_key)))).status_code == 200
        other = token(signing_key, roles=None, scp="User.Read Hub.Manage.Extra")
        assert (await http.get(OPENAPI_PATH, headers=bearer(other))).status_code == 403


async def test_allowed_client_applications(jwks: JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    settings = entra_settings(jwks, entra_roles=[ADMIN_ROLE], entra_client_ids=[CLIENT_APP])
    async with client(create_app(OFFLINE, settings)) as http:
        v2 = token(signing_key, azp=CLIENT_APP)
        v1 = token(signing_key, appid=CLIENT_APP)
        stranger = token(signing_key, azp="99999999-0000-0000-0000-000000000000")
        assert (await http.get(OPENAPI_PATH, headers=bearer(v2))).status_code == 200
        assert (await http.get(OPENAPI_PATH, headers=bearer(v1))).status_code == 200
        refused = await http.get(OPENAPI_PATH, headers=bearer(stranger))
        assert refused.status_code == 403 and "client application" in refused.json()["error"]
        assert (await http.get(OPENAPI_PATH, headers=bearer(token(signing_key)))).status_code == 403


READER_ROLE = "Hub.Reader"


async def test_a_read_role_reads_and_only_the_write_role_changes_the_hub(
    jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    settings = entra_settings(
        jwks, entra_roles=[ADMIN_ROLE], entra_read_roles=[READER_ROLE], entra_read_scopes=["Hub.Read"]
    )
    async with client(create_app(OFFLINE, settings)) as http:
        reader = bearer(token(signing_key, roles=[READER_ROLE]))
        delegated_reader = bearer(token(signing_key, roles=None, scp="User.Read Hub.Read"))
        admin = bearer(token(signing_key))
        for who in (reader, delegated_reader, admin):
            assert (await http.get(OPENAPI_PATH, headers=who)).status_code == 200
        # A start naming another hub is refused by the route (400) only once the caller may write.
        start = f"{API}/orchestrators/hello_cities?taskHub=AnotherHub"
        for who in (reader, delegated_reader):
            for method, url in (
                ("POST", start),
                ("POST", f"{API}/instances/x/terminate"),
                ("DELETE", f"{API}/instances/x"),
            ):
                refused = await http.request(method, url, headers=who)
                assert refused.status_code == 403, (method, url, refused.text)
                assert ADMIN_ROLE in refused.json()["error"] and "change" in refused.json()["error"]
        assert (await http.post(start, headers=admin)).status_code == 400
        other = bearer(token(signing_key, roles=["Orders.Read"]))
        assert (await http.get(OPENAPI_PATH, headers=other)).status_code == 403


async def test_read_roles_alone_make_a_server_nobody_can_change(
    jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    settings = entra_settings(jwks, entra_read_roles=[READER_ROLE])
    async with client(create_app(OFFLINE, settings)) as http:
        for roles in ([READER_ROLE], [ADMIN_ROLE]):
            who = bearer(token(signing_key, roles=roles))
            assert (await http.post(f"{API}/instances/x/terminate", headers=who)).status_code == 403
        assert (
            await http.get(OPENAPI_PATH, headers=bearer(token(signing_key, roles=[READER_ROLE])))
        ).status_code == 200


def test_entra_needs_a_role_or_a_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"auth": "entra", "entra_tenant_id": "contoso", "entra_audience": AUDIENCE}
    with pytest.raises(ConfigurationError, match="DURABLEHUB_HTTP_ENTRA_ROLES") as refused:
        HttpSettings(**base)
    assert "DURABLEHUB_HTTP_ENTRA_SCOPES" in str(refused.value)
    assert "DURABLEHUB_HTTP_ENTRA_ALLOW_ANY_PRINCIPAL" in str(refused.value)
    assert HttpSettings(**base, entra_allow_any_principal=True).entra_roles == []
    monkeypatch.setenv("DURABLEHUB_HTTP_ENTRA_ROLES", "Hub.Admin, Hub.Operator")
    monkeypatch.setenv("DURABLEHUB_HTTP_ENTRA_CLIENT_IDS", CLIENT_APP)
    settings = HttpSettings(**base)
    assert settings.entra_roles == ["Hub.Admin", "Hub.Operator"]
    assert settings.entra_client_ids == [CLIENT_APP]


async def test_any_principal_only_when_told(jwks: JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    settings = entra_settings(jwks, entra_allow_any_principal=True)
    async with client(create_app(OFFLINE, settings)) as http:
        anyone = token(signing_key, roles=None)
        assert (await http.get(OPENAPI_PATH, headers=bearer(anyone))).status_code == 200


# ------------------------------------------------------------------ an application's own routes


def starter(settings: HttpSettings, calls: list[Principal]) -> FastAPI:
    api = FastAPI()
    placer = require_principal(roles=["Orders.Place"], settings=settings)

    @api.post("/orders")
    async def place_order(principal: Principal = Depends(placer)) -> dict[str, object]:  # noqa: B008
        calls.append(principal)
        return {"placedBy": principal.subject, "roles": list(principal.roles)}

    return api


async def test_require_principal_checks_who_calls(jwks: JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    calls: list[Principal] = []
    settings = entra_settings(jwks, entra_roles=[ADMIN_ROLE])
    async with client(starter(settings, calls)) as http:
        assert (await http.post("/orders")).status_code == 401
        admin_only = await http.post("/orders", headers=bearer(token(signing_key)))
        assert admin_only.status_code == 403  # the management role is not the starter's
        assert "Orders.Place" in admin_only.text
        assert (await http.post("/orders", headers=bearer("not.a.jwt"))).status_code == 401
        assert calls == []
        placed = await http.post(
            "/orders", headers=bearer(token(signing_key, sub="alice", roles=["Orders.Place"], oid="o-1"))
        )
    assert placed.status_code == 200 and placed.json() == {"placedBy": "alice", "roles": ["Orders.Place"]}
    assert [c.claims["oid"] for c in calls] == ["o-1"]


def test_require_principal_needs_a_role_or_a_scope(jwks: JwksServer) -> None:
    with pytest.raises(ConfigurationError, match="role or scope"):
        require_principal(settings=entra_settings(jwks, entra_roles=[ADMIN_ROLE]))
    with pytest.raises(ConfigurationError, match="Entra ID"):
        require_principal(roles=["Orders.Place"], settings=HttpSettings(auth="none"))
