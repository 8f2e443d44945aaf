"""Keys never reach the server's logs: ``create_app`` itself installs the redaction (so an app
that mounts it is covered), the query is parsed as the server parses it (``%63ode=`` is ``code=``),
and headers are never logged, even at uvicorn's trace level."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from durablehub.azurite import free_port
from durablehub.http import OPENAPI_PATH, HttpSettings, create_app
from durablehub.http.logs import REDACTED_LOGGERS, RedactKeyFilter, redact
from tests.http.conftest import KEY
from tests.http.test_auth import OFFLINE

TRACE = 5  # uvicorn's level below DEBUG


def test_the_query_is_parsed_as_the_server_parses_it() -> None:
    assert redact(f"/x?%63ode={KEY}&a=1") == "/x?%63ode=***&a=1"
    assert redact(f"/x?a=1&&code={KEY}") == "/x?a=1&&code=***"
    assert redact(f"/x?CODE={KEY}#top") == "/x?CODE=***#top"
    assert redact("/x?codes=kept&a=code=kept") == "/x?codes=kept&a=code=kept"
    assert redact(f"/x/code={KEY}") == f"/x/code={KEY}"  # a path segment, not a parameter
    record = logging.LogRecord(
        "uvicorn.asgi",
        TRACE,
        __file__,
        1,
        "%s",
        ({"path": "/x", "query_string": f"%63ode={KEY}".encode()},),
        None,
    )
    assert RedactKeyFilter().filter(record) and KEY not in record.getMessage()


async def test_a_percent_encoded_name_is_the_key() -> None:
    """Why a regex on the raw line is not enough: the server accepts ``%63ode=``."""
    app = create_app(OFFLINE, HttpSettings(key=KEY))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert (await http.get(f"{OPENAPI_PATH}?%63ode={KEY}")).status_code == 200


@pytest.fixture
def fresh_loggers() -> Iterator[None]:
    """The uvicorn loggers without filters or levels left by other tests, restored afterwards."""
    saved = {}
    for name in (*REDACTED_LOGGERS, "uvicorn.error"):
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.filters[:])
        logger.filters.clear()
    yield
    for name, (level, filters) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).filters[:] = filters


async def test_a_mounted_app_keeps_keys_out_of_the_logs(
    fresh_loggers: None, caplog: pytest.LogCaptureFixture
) -> None:
    parent = FastAPI()
    parent.mount("/hub", create_app(OFFLINE, HttpSettings(key=KEY)))  # its lifespan never runs
    port = free_port()
    config = uvicorn.Config(parent, host="127.0.0.1", port=port, log_config=None, log_level="trace")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    caplog.set_level(TRACE)
    try:
        while not server.started:
            assert not serving.done(), serving.exception()
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/hub") as http:
            for request in (
                http.build_request("GET", OPENAPI_PATH, params={"code": KEY}),
                http.build_request("GET", f"{OPENAPI_PATH}?%63ode={KEY}&a=1"),
                http.build_request("GET", OPENAPI_PATH, headers={"x-functions-key": KEY}),
                http.build_request("GET", OPENAPI_PATH, headers={"Authorization": f"Bearer {KEY}"}),
            ):
                response = await http.send(request)
                assert response.status_code in (200, 401), response.text
    finally:
        server.should_exit = True
        await serving
    server_side = [r for r in caplog.records if r.name.startswith(("uvicorn", "durablehub", "fastapi"))]
    logged = "\n".join(record.getMessage() for record in server_side)  # not the test's own client
    assert "GET /hub/runtime/webhooks/durabletask/openapi.json?code=***" in logged
    assert "Started scope=" in logged  # the trace of every ASGI message was on
    assert KEY not in logged
