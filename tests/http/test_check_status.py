"""The public helpers in a user's own ASGI app, and keys kept out of access logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI, Request

from durablehub.async_client import AsyncDurableClient
from durablehub.http import (
    HttpSettings,
    create_check_status_response,
    wait_for_completion_or_create_check_status_response,
)
from durablehub.http.logs import RedactKeyFilter, redact
from tests.http.conftest import KEY

pytestmark = pytest.mark.azurite


def user_app(durable: AsyncDurableClient, http_settings: HttpSettings) -> FastAPI:
    api = FastAPI()

    @api.post("/orders/{count}")
    async def place_order(request: Request, count: int, wait: float = 0) -> object:
        iid = await durable.schedule_new_orchestration("fan_out_fan_in", input=count)
        if wait:
            return await wait_for_completion_or_create_check_status_response(
                request, iid, client=durable, timeout=wait, http_settings=http_settings
            )
        return create_check_status_response(
            request, iid, task_hub=durable.settings.task_hub, http_settings=http_settings
        )

    return api


async def test_helpers_in_a_users_app(durable: AsyncDurableClient) -> None:
    public = HttpSettings(key=KEY, base_url="https://orders.example.com")
    transport = httpx.ASGITransport(app=user_app(durable, public))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as http:
        accepted = await http.post("/orders/2")
        assert accepted.status_code == 202 and len(accepted.json()) == 9
        assert accepted.headers["Location"].startswith(
            f"https://orders.example.com/runtime/webhooks/durabletask/instances/{accepted.json()['id']}?taskHub="
        )
        done = await http.post("/orders/3?wait=30")
        assert done.status_code == 200 and done.json() == 6
        pending = await http.post("/orders/3?wait=0.001")
        assert pending.status_code in (200, 202)


async def test_entra_urls_carry_no_key(durable: AsyncDurableClient) -> None:
    entra = HttpSettings(
        auth="entra",
        entra_tenant_id="contoso",
        entra_audience="api://x",
        entra_roles=["Hub.Admin"],
        allowed_hosts=["testserver"],
    )
    transport = httpx.ASGITransport(app=user_app(durable, entra))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        body = (await http.post("/orders/1")).json()
        assert all("code=" not in url for url in body.values())


def test_access_log_redaction() -> None:
    assert redact("/x/instances/a?taskHub=H&code=s3cr3t&y=1") == "/x/instances/a?taskHub=H&code=***&y=1"
    assert redact("/x?CODE=s3cr3t") == "/x?CODE=***"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/runtime/webhooks/durabletask/instances/i?code={KEY}", "1.1", 200),
        None,
    )
    assert RedactKeyFilter().filter(record)
    assert KEY not in record.getMessage() and "code=***" in record.getMessage()
