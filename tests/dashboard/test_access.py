"""Who may see and use the dashboard: the API's key through a session cookie (never in a URL),
Entra ID tokens as the API checks them, and a read-only server that hides and refuses actions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from durablehub.async_client import AsyncDurableClient
from durablehub.dashboard import session
from durablehub.http import HttpSettings, create_app
from tests.dashboard.conftest import csrf, dashboard_client, sign_in
from tests.http.conftest import API, KEY
from tests.http.entra import ADMIN_ROLE, AUDIENCE, ISSUER, KID, JwksServer, bearer, new_key, token
from tests.http.test_auth import OFFLINE


def offline(**settings: object) -> httpx.AsyncClient:
    app = create_app(OFFLINE, HttpSettings(key=KEY, allowed_hosts=["testserver"], **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_pages_need_a_session_and_the_login_form_refuses_a_wrong_or_missing_key() -> None:
    async with offline() as http:
        page = await http.get(
            "/dashboard/instances/x", params={"code": KEY}, headers={"x-functions-key": KEY}
        )
        assert page.status_code == 303  # the API's ways of sending the key do not open the dashboard
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Finstances%2Fx"  # no key
        assert (
            await http.get("/dashboard/", headers={"x-dashboard-fragment": "instances"})
        ).status_code == 401

        wrong = await sign_in(http, "not-the-key-0123456789")
        assert wrong.status_code == 401 and "the key is not valid" in wrong.text
        missing = await sign_in(http, "")
        assert missing.status_code == 401 and "a key is required" in missing.text
        assert session.SESSION_COOKIE not in http.cookies
        no_token = await http.post("/dashboard/login", data={"key": KEY})
        assert no_token.status_code == 403 and session.SESSION_COOKIE not in http.cookies


async def test_the_session_cookie_is_httponly_strict_and_is_not_the_key() -> None:
    async with offline() as http:
        signed_in = await sign_in(http)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard/"
        cookie = next(
            c for c in signed_in.headers.get_list("set-cookie") if c.startswith("durablehub_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert KEY not in cookie and KEY not in signed_in.headers.get("location", "")
        login_page = await http.get("/dashboard/login")
        assert KEY not in login_page.text

        out = await http.post("/dashboard/logout", data={"csrf": csrf(http)})
        assert out.status_code == 303 and session.SESSION_COOKIE not in http.cookies


async def test_after_signing_in_the_browser_goes_only_to_a_dashboard_page() -> None:
    async with offline() as http:
        await http.get("/dashboard/login")
        for target, landing in (
            ("/dashboard/instances/a", "/dashboard/instances/a"),
            ("https://evil.example/", "/dashboard/"),
            ("//evil.example/dashboard/", "/dashboard/"),
            ("/runtime/webhooks/durabletask/instances", "/dashboard/"),
        ):
            answer = await http.post(
                "/dashboard/login", data={"key": KEY, "csrf": csrf(http), "next": target}
            )
            assert answer.headers["location"] == landing, target


def test_a_session_ends_at_its_expiry_and_with_another_key() -> None:
    value = session.new_session(KEY, now=1000)
    assert session.session_valid(value, KEY, now=1000 + session.SESSION_SECONDS - 1)
    assert not session.session_valid(value, KEY, now=1000 + session.SESSION_SECONDS + 1)
    assert not session.session_valid(value, "another-key-0123456789", now=1000)
    expires, _, signature = value.partition(".")
    assert not session.session_valid(f"{int(expires) + 9999}.{signature}", KEY, now=1000)  # no extending
    for junk in ("", ".", "abc.def", "1" * 40 + ".x"):
        assert not session.session_valid(junk, KEY, now=1000)


async def test_forms_elsewhere_are_still_refused_by_the_api() -> None:
    async with offline() as http:
        form = await http.post(
            f"{API}/instances/x/terminate", data={"a": "b"}, headers={"x-functions-key": KEY}
        )
        assert form.status_code == 400 and "must be JSON" in form.json()["error"]


@pytest.mark.azurite
async def test_read_only_hides_the_actions_and_refuses_every_write(durable: AsyncDurableClient) -> None:
    iid = await durable.schedule_new_orchestration("approval", input=600)
    async with dashboard_client(durable, read_only=True) as http:
        assert (await sign_in(http)).status_code == 303  # signing in changes nothing in the hub
        page = await http.get(f"/dashboard/instances/{iid}")
        assert page.status_code == 200 and 'id="actions"' not in page.text and "read-only" in page.text
        refused = await http.post(f"/dashboard/instances/{iid}/terminate", data={"csrf": csrf(http)})
        assert refused.status_code == 403 and "DURABLEHUB_HTTP_READ_ONLY" in refused.text
        api = await http.post(f"{API}/instances/{iid}/terminate", headers={"x-functions-key": KEY})
        assert api.status_code == 403
        assert (await http.get(f"{API}/instances/{iid}", headers={"x-functions-key": KEY})).status_code == 202
    state = await durable.get_orchestration_state(iid)
    assert state is not None and not state.runtime_status.is_terminal
    await durable.terminate_orchestration(iid)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    server = JwksServer({KID: signing_key})
    yield server
    server.close()


@pytest.mark.azurite
async def test_entra_id_tokens_are_checked_as_the_api_checks_them(
    durable: AsyncDurableClient, jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    settings = HttpSettings(
        auth="entra",
        entra_audience=AUDIENCE,
        entra_issuer=ISSUER,
        entra_jwks_url=jwks.url,
        entra_roles=[ADMIN_ROLE],
        allowed_hosts=["testserver"],
    )
    app = create_app(http_settings=settings, client=durable)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await http.get("/dashboard/")).status_code == 401
        assert (
            await http.get("/dashboard/", headers=bearer(token(signing_key, roles=["Other"])))
        ).status_code == 403
        admin = await http.get("/dashboard/", headers=bearer(token(signing_key)))
        assert admin.status_code == 200 and "<h1>Instances</h1>" in admin.text


async def test_cookies_are_secure_behind_an_https_base_url() -> None:
    """A proxy that ends TLS forwards plain HTTP: the public URL says the browser uses HTTPS."""
    settings = HttpSettings(key=KEY, base_url="https://ops.example.com", allowed_hosts=["testserver"])
    app = create_app(OFFLINE, settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        login = await http.get("/dashboard/login")
        assert "; secure" in login.headers["set-cookie"].lower()
        token = "t" * 43  # the browser sends the cookie (over HTTPS to the proxy); httpx here would not
        signed_in = await http.post(
            "/dashboard/login",
            data={"key": KEY, "csrf": token},
            headers={"cookie": f"durablehub_csrf={token}"},
        )
        assert signed_in.status_code == 303
        assert all("; secure" in c.lower() for c in signed_in.headers.get_list("set-cookie"))


@pytest.mark.azurite
async def test_signing_out_ends_the_session_for_a_copy_of_its_cookie(durable: AsyncDurableClient) -> None:
    async with dashboard_client(durable) as http:
        assert (await sign_in(http)).status_code == 303
        copied = http.cookies.get(session.SESSION_COOKIE)
        assert copied and (await http.get("/dashboard/")).status_code == 200
        out = await http.post("/dashboard/logout", data={"csrf": csrf(http)})
        assert out.status_code == 303 and session.SESSION_COOKIE not in http.cookies
        # A browser that kept the cookie (or anyone who copied it) is signed out too.
        replayed = await http.get("/dashboard/", headers={"cookie": f"{session.SESSION_COOKIE}={copied}"})
        assert replayed.status_code == 303 and "/dashboard/login" in replayed.headers["location"]
        assert (await sign_in(http)).status_code == 303  # signing in again gives a new session
        assert (await http.get("/dashboard/")).status_code == 200


async def test_wrong_keys_on_the_login_form_are_rate_limited_per_client() -> None:
    app = create_app(OFFLINE, HttpSettings(key=KEY, allowed_hosts=["testserver"]))

    def browser_at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async with browser_at("198.51.100.7") as guesser, browser_at("198.51.100.8") as owner:
        codes = [(await sign_in(guesser, f"guess-{i:04d}-0123456789")).status_code for i in range(100)]
        limited = codes.index(429) if 429 in codes else len(codes)
        assert set(codes[:limited]) == {401} and set(codes[limited:]) == {429}, codes
        assert limited <= 20, codes
        refused = await sign_in(guesser)
        assert refused.status_code == 429 and "too many wrong keys" in refused.text
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        assert session.SESSION_COOKIE not in guesser.cookies
        assert (await sign_in(owner)).status_code == 303


def test_the_revocation_list_is_bounded_and_never_forgets_a_revoked_session() -> None:
    revoked = session.RevokedSessions(max_size=2)
    first, second, third = (session.new_session(KEY, now=1000) for _ in range(3))
    revoked.revoke("junk.value.x", KEY, now=1000)  # not validly signed: takes no room
    revoked.revoke(first, KEY, now=1000)
    revoked.revoke(second, KEY, now=1000)
    assert not session.session_valid(first, KEY, now=1000, revoked=revoked)
    assert session.session_valid(third, KEY, now=1000, revoked=revoked)
    revoked.revoke(session.new_session(KEY, now=1000), KEY, now=1001)  # full: older sessions all end
    for value in (first, second, third):
        assert not session.session_valid(value, KEY, now=1001, revoked=revoked)
    assert session.session_valid(session.new_session(KEY, now=1002), KEY, now=1002, revoked=revoked)


def test_an_overflow_in_the_second_a_session_was_issued_still_ends_it() -> None:
    """Issue times are whole seconds: clearing the list must not bring back a session revoked
    in the very second of the overflow."""
    revoked = session.RevokedSessions(max_size=2)
    first, second, third = (session.new_session(KEY, now=1000) for _ in range(3))
    for value in (first, second, third):  # the third fills the list: cleared, all issued then end
        revoked.revoke(value, KEY, now=1000)
    for value in (first, second, third):
        assert not session.session_valid(value, KEY, now=1000, revoked=revoked), value


@pytest.mark.azurite
async def test_a_token_with_a_read_role_sees_the_dashboard_without_its_actions(
    durable: AsyncDurableClient, jwks: JwksServer, signing_key: rsa.RSAPrivateKey
) -> None:
    settings = HttpSettings(
        auth="entra",
        entra_audience=AUDIENCE,
        entra_issuer=ISSUER,
        entra_jwks_url=jwks.url,
        entra_roles=[ADMIN_ROLE],
        entra_read_roles=["Hub.Reader"],
        allowed_hosts=["testserver"],
    )
    iid = await durable.schedule_new_orchestration("approval", input=600)
    app = create_app(http_settings=settings, client=durable)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        reader = bearer(token(signing_key, roles=["Hub.Reader"]))
        page = await http.get(f"/dashboard/instances/{iid}", headers=reader)
        assert page.status_code == 200 and 'id="actions"' not in page.text and "read-only" in page.text
        await http.get("/dashboard/login")
        refused = await http.post(
            f"/dashboard/instances/{iid}/terminate", data={"csrf": csrf(http)}, headers=reader
        )
        assert refused.status_code == 403 and ADMIN_ROLE in refused.text
        admin = await http.get(f"/dashboard/instances/{iid}", headers=bearer(token(signing_key)))
        assert admin.status_code == 200 and 'id="actions"' in admin.text and "read-only" not in admin.text
    state = await durable.get_orchestration_state(iid)
    assert state is not None and not state.runtime_status.is_terminal
    await durable.terminate_orchestration(iid)
