"""``create_app()`` mounted in an application under a path: the dashboard's links, redirects,
cookies and forms stay under that path."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from durablehub.async_client import AsyncDurableClient
from durablehub.http import HttpSettings, create_app
from tests.http.conftest import KEY

pytestmark = pytest.mark.azurite


async def test_the_dashboard_works_under_a_mount(durable: AsyncDurableClient) -> None:
    outer = FastAPI()
    outer.mount(
        "/ops", create_app(http_settings=HttpSettings(key=KEY, allowed_hosts=["testserver"]), client=durable)
    )
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        first = await http.get("/ops/dashboard/instances/x")
        assert first.status_code == 303
        assert first.headers["location"] == "/ops/dashboard/login?next=%2Fops%2Fdashboard%2Finstances%2Fx"
        login = await http.get("/ops/dashboard/login")
        assert (
            'action="/ops/dashboard/login"' in login.text
            and 'href="/ops/dashboard/static/dashboard.css"' in login.text
        )
        assert "Path=/ops/dashboard" in login.headers["set-cookie"]
        signed_in = await http.post(
            "/ops/dashboard/login",
            data={
                "key": KEY,
                "csrf": http.cookies.get("durablehub_csrf") or "",
                "next": "/ops/dashboard/entities",
            },
        )
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ops/dashboard/entities"
        assert "Path=/ops/dashboard" in signed_in.headers["set-cookie"]

        iid = await durable.schedule_new_orchestration("approval", input=600)
        page = await http.get(f"/ops/dashboard/instances/{iid}")
        assert page.status_code == 200
        assert re.findall(r'(?:href|action|data-src)="(/[^"]*)"', page.text)
        assert all(
            u.startswith("/ops/dashboard")
            for u in re.findall(r'(?:href|action|data-src)="(/[^"]*)"', page.text)
        )
        done = await http.post(
            f"/ops/dashboard/instances/{iid}/terminate",
            data={"csrf": http.cookies.get("durablehub_csrf") or ""},
        )
        assert (
            done.status_code == 303
            and done.headers["location"] == f"/ops/dashboard/instances/{iid}?done=terminate"
        )
