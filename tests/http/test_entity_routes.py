"""The entity routes of the management API (python-sdks.md §5.2) against Azurite with a real
worker running the end-to-end app's entities (``tests/e2e/entity_apps.py``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.http.conftest import API

pytestmark = pytest.mark.azurite


def new_key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def wait_for_state(
    http: httpx.AsyncClient, name: str, key: str, expected: Any, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"{API}/entities/{name}/{key}")
        if response.status_code == 200 and response.json() == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"entity {name}/{key}: {response.status_code} {response.text}")
        await asyncio.sleep(0.1)


async def list_all(http: httpx.AsyncClient, name: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every entity of ``name``, following the continuation header; and how many pages it took."""
    items: list[dict[str, Any]] = []
    headers: dict[str, str] = {}
    pages = 0
    while True:
        response = await http.get(f"{API}/entities/{name}", params=params, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()
        pages += 1
        token = response.headers.get("x-ms-continuation-token")
        if not token:
            return items, pages
        headers = {"x-ms-continuation-token": token}


# ------------------------------------------------------------------------------ signal + get


async def test_signal_with_post_then_get_the_state(http: httpx.AsyncClient) -> None:
    key = new_key()
    response = await http.post(f"{API}/entities/account/{key}", params={"op": "deposit"}, json=5)
    assert response.status_code == 202, response.text
    assert response.content == b""
    await wait_for_state(http, "account", key, 5)
    # Names are case-insensitive; keys are not.
    assert (await http.post(f"{API}/entities/Account/{key}?op=deposit", json=7)).status_code == 202
    await wait_for_state(http, "ACCOUNT", key, 12)
    assert (await http.get(f"{API}/entities/account/{key.upper()}")).status_code == 404


async def test_signal_with_delete_and_a_class_based_entity(http: httpx.AsyncClient) -> None:
    key = new_key("cart")
    for item in ("apple", "pear"):
        response = await http.post(f"{API}/entities/ShoppingCart/{key}?op=add_item", json=item)
        assert response.status_code == 202
    await wait_for_state(http, "ShoppingCart", key, ["apple", "pear"])
    removed = await http.request(
        "DELETE", f"{API}/entities/ShoppingCart/{key}", params={"op": "remove_item"}, json="apple"
    )
    assert removed.status_code == 202
    await wait_for_state(http, "shoppingcart", key, ["pear"])


async def test_signal_without_a_body_sends_none(http: httpx.AsyncClient) -> None:
    key = new_key()
    assert (await http.post(f"{API}/entities/account/{key}?op=deposit", json=3)).status_code == 202
    await wait_for_state(http, "account", key, 3)
    # "delete" takes no input and removes the state: the entity no longer exists.
    assert (await http.delete(f"{API}/entities/account/{key}?op=delete")).status_code == 202
    deadline = time.monotonic() + 30
    while (gone := await http.get(f"{API}/entities/account/{key}")).status_code != 404:
        assert time.monotonic() < deadline, gone.text
        await asyncio.sleep(0.1)
    assert "does not exist" in gone.json()["error"]


async def test_get_unknown_entity_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{API}/entities/account/{new_key('nobody')}")
    assert response.status_code == 404
    assert "no entity '@account@nobody-" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "message"),
    [
        ("POST", "/entities/account/k1", {"json": 1}, "'op' query parameter"),
        ("DELETE", "/entities/account/k1?op=", {}, "'op' query parameter"),
        (
            "POST",
            "/entities/account/k1?op=deposit",
            {"content": b"{bad", "headers": {"content-type": "application/json"}},
            "not valid JSON",
        ),
        (
            "POST",
            "/entities/account/k1?op=deposit",
            # With the key, a body under another content type is read as JSON: this one is not.
            {"content": b"amount=5", "headers": {"content-type": "text/plain"}},
            "must be JSON",
        ),
        ("POST", "/entities/a@b/k1?op=deposit", {"json": 1}, "must not contain '@'"),
        ("GET", "/entities/a@b/k1", {}, "must not contain '@'"),
        ("GET", "/entities/a@b", {}, "must not contain '@'"),
        ("GET", "/entities/account?top=0", {}, "top"),
        ("GET", "/entities/account?fetchState=perhaps", {}, "fetchState"),
        ("GET", "/entities/account?lastOperationTimeFrom=yesterday", {}, "lastOperationTimeFrom"),
    ],
)
async def test_bad_requests_are_400(
    http: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], message: str
) -> None:
    response = await http.request(method, f"{API}{url}", **kwargs)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


# ------------------------------------------------------------------------------------ list


async def test_list_pages_with_the_continuation_header(http: httpx.AsyncClient, durable) -> None:
    # An entity name of its own, so that the list holds exactly the entities made here.
    import durablehub as dh

    name = "account"
    keys = [new_key("list") for _ in range(3)]
    for i, key in enumerate(keys):
        await durable.signal_entity(dh.EntityInstanceId(name, key), "deposit", i + 1)
    for i, key in enumerate(keys):
        await wait_for_state(http, name, key, i + 1)

    everything, _ = await list_all(http, name, fetchState="true", top=1000)
    mine = {e["entityId"]["key"]: e for e in everything if e["entityId"]["key"] in keys}
    assert set(mine) == set(keys)
    first = mine[keys[0]]
    assert first["entityId"] == {"name": "account", "key": keys[0]}
    assert first["state"] == 1 and first["backlogQueueSize"] == 0 and first["lockedBy"] is None
    assert first["lastOperationTime"].endswith("Z")
    assert all(e["entityId"]["name"] == "account" for e in everything)

    # Without fetchState, no state; with top=1, one entity a page and a continuation header.
    page = await http.get(f"{API}/entities/Account", params={"top": 1})
    assert page.status_code == 200
    assert len(page.json()) <= 1 and "x-ms-continuation-token" in page.headers
    assert all("state" not in e for e in page.json())
    paged, pages = await list_all(http, name, top=1)
    assert pages >= len(everything)
    assert sorted(e["entityId"]["key"] for e in paged) == sorted(e["entityId"]["key"] for e in everything)


async def test_list_filters_by_name_and_last_operation_time(http: httpx.AsyncClient) -> None:
    key = new_key("cart")
    assert (await http.post(f"{API}/entities/ShoppingCart/{key}?op=add_item", json="fig")).status_code == 202
    await wait_for_state(http, "ShoppingCart", key, ["fig"])
    carts, _ = await list_all(http, "shoppingCART", fetchState="true")
    assert {"name": "shoppingcart", "key": key} in [c["entityId"] for c in carts]
    assert all(c["entityId"]["name"] == "shoppingcart" for c in carts)
    # A name is not a prefix: "shopping" lists no carts.
    assert (await http.get(f"{API}/entities/shopping")).json() == []
    assert (await list_all(http, "nosuchentity"))[0] == []
    later, _ = await list_all(http, "ShoppingCart", lastOperationTimeFrom="2999-01-01T00:00:00Z")
    assert later == []
    earlier, _ = await list_all(http, "ShoppingCart", lastOperationTimeTo="2000-01-01T00:00:00Z")
    assert earlier == []


# ------------------------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/entities/account/k1"),
        ("GET", "/entities/account"),
        ("POST", "/entities/account/k1?op=deposit"),
        ("DELETE", "/entities/account/k1?op=deposit"),
    ],
)
async def test_entity_routes_need_the_key(http: httpx.AsyncClient, method: str, path: str) -> None:
    missing = await http.request(method, f"{API}{path}", headers={"x-functions-key": ""})
    assert missing.status_code == 401
    assert "a key is required" in missing.json()["error"]
    wrong = await http.request(method, f"{API}{path}", headers={"x-functions-key": "not-the-key-at-all"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "the key is not valid"}


async def test_openapi_lists_the_entity_routes(http: httpx.AsyncClient) -> None:
    paths = (await http.get(f"{API}/openapi.json")).json()["paths"]
    one = paths[f"{API}/entities/{{name}}/{{key}}"]
    assert set(one) == {"get", "post", "delete"}
    assert {"200", "400", "401", "404"} <= set(one["get"]["responses"])
    for method in ("post", "delete"):
        assert {"202", "400", "401"} <= set(one[method]["responses"])
        assert "op" in [p["name"] for p in one[method]["parameters"]]
        assert "requestBody" in one[method]
    listed = paths[f"{API}/entities/{{name}}"]["get"]
    assert {"top", "fetchState", "x-ms-continuation-token"} <= {p["name"] for p in listed["parameters"]}
    assert {"200", "400", "401"} <= set(listed["responses"])
