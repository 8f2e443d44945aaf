"""azure-functions-durable 1.x's ``DurableOrchestrationClient`` (the client of every Durable
Functions Python app, from PyPI, not a mock) against a real ``durablehub serve`` with a worker.

The client is built as the Functions host builds it: from the durableClient binding's JSON
(taskHubName, creationUrls, managementUrls with the ``INSTANCEID`` placeholder, baseUrl,
requiredQueryStringParameters, rpcBaseUrl). Its requests go to ``rpcBaseUrl``; 1.x adds no
credentials of its own, so its shared aiohttp session is given the key header.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import azure.functions as func
import httpx
import pytest
from azure.durable_functions import DurableOrchestrationClient, EntityId, OrchestrationRuntimeStatus
from azure.durable_functions.models.utils import http_utils

from durablehub.async_client import AsyncDurableClient
from durablehub.azurite import free_port
from durablehub.dashboard.session import SESSION_COOKIE, new_session
from durablehub.http import HttpSettings, create_app
from durablehub.http.payloads import management_urls
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from tests.http.conftest import API, KEY, new_id

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]
KEYED = {"x-functions-key": KEY}


@contextmanager
def serving(settings: TaskHubSettings, log_path: Path, *args: str, **env: str) -> Iterator[str]:
    """``durablehub serve *args`` on a free port, for the hub of ``settings``; its base URL."""
    port = free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "durablehub", "serve", *args, "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the port opens once the worker (if any) has started
            try:
                if httpx.get(f"{base}{API}/openapi.json", headers=KEYED).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def served(http_hub_settings: TaskHubSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``durablehub serve --app tests.e2e.apps:app`` (the API and a worker), with the key."""
    log_path = tmp_path_factory.mktemp("df-client") / "serve.log"
    with serving(http_hub_settings, log_path, "--app", "tests.e2e.apps:app", DURABLEHUB_HTTP_KEY=KEY) as base:
        yield base


@pytest.fixture(scope="module")
async def hub_cleanup(http_hub_settings: TaskHubSettings) -> AsyncIterator[None]:
    yield
    async with AsyncTaskHub(http_hub_settings) as hub:
        await hub.delete()


def binding(base: str, task_hub: str) -> str:
    """The durableClient binding's JSON as the Functions host hands it to a Python function."""
    api = f"{base}{API}"
    query = f"taskHub={task_hub}&code={KEY}"
    start = f"{api}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return json.dumps(
        {
            "taskHubName": task_hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{start}?code={KEY}",
                "createAndWaitOnNewInstancePostUri": (
                    f"{start}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&code={KEY}"
                ),
            },
            "managementUrls": management_urls(base, "INSTANCEID", task_hub=task_hub, key=KEY),
            "baseUrl": api,
            "requiredQueryStringParameters": query,
            "rpcBaseUrl": f"{api}/",
        }
    )


@pytest.fixture(scope="module")
async def df(
    served: str, http_hub_settings: TaskHubSettings, hub_cleanup: None
) -> AsyncIterator[DurableOrchestrationClient]:
    # 1.x sends through one module-level aiohttp session and has no setting for credentials:
    # a session made beforehand with the key header is the one it uses.
    session = aiohttp.ClientSession(headers=KEYED)
    http_utils._client_session = session
    try:
        yield DurableOrchestrationClient(binding(served, http_hub_settings.task_hub))
    finally:
        http_utils._client_session = None
        await session.close()


@pytest.fixture(scope="module")
async def durable(http_hub_settings: TaskHubSettings, served: str) -> AsyncIterator[AsyncDurableClient]:
    async with AsyncDurableClient(http_hub_settings) as client:
        yield client


async def wait_for(
    df: DurableOrchestrationClient, iid: str, status: OrchestrationRuntimeStatus, timeout: float = 30
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        state = await df.get_status(iid, show_input=True)
        if state.runtime_status == status:
            return state
        assert time.monotonic() < deadline, f"{iid} is {state.runtime_status}, not {status}"
        await asyncio.sleep(0.1)


# ----------------------------------------------------------------------------------- starts


async def test_start_new_without_input_and_with_an_instance_id(df: DurableOrchestrationClient) -> None:
    iid = await df.start_new("hello_cities")
    chosen = await df.start_new("hello_cities", new_id("df"))
    assert chosen.startswith("df-")
    for instance in (iid, chosen):
        done = await wait_for(df, instance, OrchestrationRuntimeStatus.Completed)
        assert done.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        assert done.input_ is None


async def test_a_start_input_reads_the_same_from_every_client(
    df: DurableOrchestrationClient, durable: AsyncDurableClient, served: str
) -> None:
    """1.x JSON-encodes the input and posts that string as JSON; the Functions host stores the
    body as it is (HttpApiHandler: ExecutionStartedEvent(-1, json)), so the instance's input
    is that string, which DF orchestrators decode themselves. Every client reads it alike."""
    value = {"city": "Zürich", "n": [1, 2]}
    iid = await df.start_new("big_payload", new_id("df-input"), value)
    done = await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    encoded = json.dumps(value)  # what 1.x's df_dumps makes of it
    assert done.input_ == encoded and done.output == encoded + "!"
    state = await durable.get_orchestration_state(iid, fetch_payloads=True)
    assert state is not None and json.loads(state.serialized_input or "") == encoded
    async with httpx.AsyncClient(base_url=served, headers=KEYED) as http:
        assert (await http.get(f"{API}/instances/{iid}")).json()["input"] == encoded


async def test_start_new_with_a_version(df: DurableOrchestrationClient, durable: AsyncDurableClient) -> None:
    iid = await df.start_new("hello_cities", new_id("df-version"), "x", version="2.0")
    await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    state = await durable.get_orchestration_state(iid)
    assert state is not None and state.version == "2.0"


async def test_an_unknown_orchestrator_is_refused_with_the_message_1x_reads(
    df: DurableOrchestrationClient,
) -> None:
    with pytest.raises(Exception, match="no orchestrator named 'no_such_orchestrator'"):
        await df.start_new("no_such_orchestrator")


# -------------------------------------------------------------------------------- management


async def test_raise_event_and_get_status_with_history(df: DurableOrchestrationClient) -> None:
    iid = await df.start_new("status_reporter", new_id("df-event"))
    await wait_for(df, iid, OrchestrationRuntimeStatus.Running)
    await df.raise_event(iid, "go", {"v": 1})
    done = await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    assert done.output == json.dumps({"v": 1}) and done.custom_status["stage"] == "done"
    full = await df.get_status(iid, show_history=True, show_history_output=True, show_input=True)
    events = [e["EventType"] for e in full.historyEvents]
    assert events[0] == "ExecutionStarted" and "EventRaised" in events and events[-1] == "ExecutionCompleted"
    assert not await df.get_status(new_id("df-missing"))  # 404: a status that is falsy, as DF's
    with pytest.raises(Exception, match="No instance with ID"):
        await df.raise_event(new_id("df-missing"), "go", 1)


async def test_suspend_resume_and_terminate(df: DurableOrchestrationClient) -> None:
    iid = await df.start_new("status_reporter", new_id("df-control"))
    await wait_for(df, iid, OrchestrationRuntimeStatus.Running)
    await df.suspend(iid, "for a look")
    await wait_for(df, iid, OrchestrationRuntimeStatus.Suspended)
    await df.resume(iid, "looked")
    await wait_for(df, iid, OrchestrationRuntimeStatus.Running)
    await df.terminate(iid, "enough")
    terminated = await wait_for(df, iid, OrchestrationRuntimeStatus.Terminated)
    assert terminated.output == "enough"
    await df.terminate(iid, "again")  # 410 for a finished instance: 1.x takes it as done
    with pytest.raises(Exception, match="No instance with ID"):
        await df.suspend(new_id("df-missing"), "x")


async def test_restart_with_the_same_and_a_new_id(df: DurableOrchestrationClient) -> None:
    iid = await df.start_new("hello_cities", new_id("df-restart"))
    await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    # 1.x returns the response body: the check-status payload, as from the Functions host.
    same = await df.restart(iid, restart_with_new_instance_id=False)
    assert same["id"] == iid
    fresh = await df.restart(iid)
    assert fresh["id"] != iid
    await wait_for(df, fresh["id"], OrchestrationRuntimeStatus.Completed)
    await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)


async def test_rewind_a_failed_instance(df: DurableOrchestrationClient) -> None:
    # 1.x posts the input JSON-encoded: the orchestrator receives the string "-1", and fails.
    iid = await df.start_new("child", new_id("df-rewind"), -1)
    failed = await wait_for(df, iid, OrchestrationRuntimeStatus.Failed)
    assert "TypeError" in failed.output
    await df.rewind(iid, "fixed it")
    with pytest.raises(Exception, match="No instance with ID"):
        await df.rewind(new_id("df-missing"), "x")


async def test_queries_and_purges(df: DurableOrchestrationClient) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    prefix = new_id("df-query")
    ids = [await df.start_new("hello_cities", f"{prefix}-{i}") for i in range(2)]
    for iid in ids:
        await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    assert {s.instance_id for s in await df.get_status_all()} >= set(ids)
    found = await df.get_status_by(
        created_time_from=since,
        created_time_to=datetime.now(UTC) + timedelta(seconds=5),
        runtime_status=[OrchestrationRuntimeStatus.Completed],
        instance_id_prefix=prefix,
    )
    assert sorted(s.instance_id for s in found) == sorted(ids)
    assert (await df.purge_instance_history(ids[0])).instances_deleted == 1
    assert (await df.purge_instance_history(ids[0])).instances_deleted == 0  # 404
    terminated = await df.start_new("status_reporter", new_id("df-purge"))
    await wait_for(df, terminated, OrchestrationRuntimeStatus.Running)
    await df.terminate(terminated, "to purge")
    await wait_for(df, terminated, OrchestrationRuntimeStatus.Terminated)
    purged = await df.purge_instance_history_by(
        created_time_from=since, runtime_status=[OrchestrationRuntimeStatus.Terminated]
    )
    assert purged.instances_deleted >= 1
    assert not await df.get_status(terminated)


async def test_signal_entity_and_read_entity_state(df: DurableOrchestrationClient) -> None:
    cart = EntityId("ShoppingCart", new_id("df-cart"))
    assert not (await df.read_entity_state(cart)).entity_exists
    await df.signal_entity(cart, "AddItem", "apple")  # 1.x JSON-encodes it, as a start's input
    await df.signal_entity(cart, "GetContents")  # no input: an empty body
    deadline = time.monotonic() + 30
    while not (state := await df.read_entity_state(cart)).entity_exists:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert state.entity_state == [json.dumps("apple")]


# ------------------------------------------------------------------- the async HTTP pattern


async def test_check_status_response_and_management_payload_urls_work(
    df: DurableOrchestrationClient, served: str
) -> None:
    iid = await df.start_new("status_reporter", new_id("df-urls"))
    request = func.HttpRequest("POST", f"{served}/api/orchestrators/status_reporter", body=b"")
    response = df.create_check_status_response(request, iid)
    assert response.status_code == 202
    payload = json.loads(response.get_body())
    assert payload == df.create_http_management_payload(iid) and payload["id"] == iid
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    async with httpx.AsyncClient() as http:  # the URLs carry code=, as the host's do
        assert (await http.get(payload["statusQueryGetUri"])).status_code == 202
        raised = await http.post(payload["sendEventPostUri"].replace("{eventName}", "go"), json=True)
        assert raised.status_code == 202, raised.text
    done = await wait_for(df, iid, OrchestrationRuntimeStatus.Completed)
    assert done.output is True


async def test_wait_for_completion_or_create_check_status_response(df: DurableOrchestrationClient) -> None:
    request = func.HttpRequest("POST", "http://127.0.0.1/api/start", body=b"")
    quick = await df.start_new("hello_cities", new_id("df-wait"))
    done = await df.wait_for_completion_or_create_check_status_response(request, quick, 30_000, 100)
    assert done.status_code == 200 and json.loads(done.get_body())[0] == "Hello Tokyo!"
    slow = await df.start_new("status_reporter", new_id("df-wait"))
    pending = await df.wait_for_completion_or_create_check_status_response(request, slow, 500, 100)
    assert pending.status_code == 202 and json.loads(pending.get_body())["id"] == slow
    await df.terminate(slow, "done waiting")


# ------------------------------------------------------------------------- bodies over HTTP


async def test_bodies_as_the_functions_host_reads_them(served: str, durable: AsyncDurableClient) -> None:
    """An empty body is no input, whatever its label; with the key, a JSON body is read as JSON
    whatever its label (``curl -d`` sends form-encoded); a body that is not JSON is a 400."""
    start = f"{API}/orchestrators/big_payload"
    async with httpx.AsyncClient(base_url=served, headers=KEYED) as http:
        empty = await http.post(
            f"{API}/orchestrators/hello_cities", headers={"content-type": "application/octet-stream"}
        )
        assert empty.status_code == 202, empty.text
        for headers, params in (
            ({"content-type": "application/x-www-form-urlencoded"}, {}),  # curl -d '"x"'
            ({"content-type": "text/plain"}, {}),
            ({"content-type": "text/plain", "x-functions-key": ""}, {"code": KEY}),
        ):
            started = await http.post(start, content=b'"x"', headers=headers, params=params)
            assert started.status_code == 202, started.text
            state = await durable.wait_for_orchestration_completion(started.json()["id"], timeout=30)
            assert state.serialized_input == '"x"' and state.serialized_output == '"x!"'
        # A wrong code= is a wrong key, answered (and counted) by the route's key check.
        forged = await http.post(
            start,
            content=b'"x"',
            headers={"content-type": "text/plain", "x-functions-key": ""},
            params={"code": "wrong"},
        )
        assert forged.status_code == 401 and "the key is not valid" in forged.json()["error"], forged.text
        not_json = await http.post(
            start, content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
        assert not_json.json()["ExceptionMessage"] == not_json.json()["error"]


async def test_code_guesses_with_a_form_type_are_wrong_keys_and_rate_limited(
    http_hub_settings: TaskHubSettings, tmp_path: Path
) -> None:
    """A ``code=`` on an API path lifts the content-type check whatever its value, so that the
    route's key check compares it and counts a wrong one: the body's type is no key oracle.
    On the dashboard's form paths ``code=`` lifts nothing, not even the right key."""
    env = {"DURABLEHUB_HTTP_KEY": KEY, "DURABLEHUB_HTTP_KEY_FAILURES_PER_MINUTE": "3"}
    with serving(http_hub_settings, tmp_path / "limited.log", **env) as base:
        plain = {"content-type": "text/plain"}
        async with httpx.AsyncClient(base_url=base, headers=plain) as http:
            form = await http.post("/dashboard/instances/x/terminate", content=b"{}", params={"code": KEY})
            assert form.status_code == 400 and "application/json" in form.json()["error"], form.text
            url = f"{API}/instances/x/terminate"
            guesses = [await http.post(url, content=b"{}", params={"code": f"guess{i}"}) for i in range(4)]
            assert [g.status_code for g in guesses] == [401, 401, 401, 429], [g.text for g in guesses]
            assert "too many wrong keys" in guesses[-1].json()["error"]
            right = await http.post(url, content=b"{}", params={"code": KEY})
            assert right.status_code == 429, right.text  # held back, right key or not


async def test_a_browser_cookie_does_not_lift_the_content_type_check(served: str) -> None:
    """The dashboard's session cookie is no key: a form-type body riding on it is refused
    before anything reads it, on the API and on the dashboard (part of the CSRF defence)."""
    cookie = {"Cookie": f"{SESSION_COOKIE}={new_session(KEY)}"}
    async with httpx.AsyncClient(base_url=served) as http:
        for url in (f"{API}/orchestrators/big_payload", "/dashboard/instances/x/terminate"):
            refused = await http.post(url, content=b'"x"', headers={**cookie, "content-type": "text/plain"})
            assert refused.status_code == 400, (url, refused.text)
            assert "application/json" in refused.json()["error"]


async def test_1x_without_credentials_on_a_loopback_server_without_auth(
    served: str, http_hub_settings: TaskHubSettings, tmp_path: Path
) -> None:
    """As the Functions host's own endpoint: loopback, no key. 1.x's session as it makes it."""
    with serving(http_hub_settings, tmp_path / "open.log", DURABLEHUB_HTTP_AUTH="none") as base:
        saved, http_utils._client_session = http_utils._client_session, None
        try:
            open_df = DurableOrchestrationClient(binding(base, http_hub_settings.task_hub))
            iid = await open_df.start_new("status_reporter", new_id("df-open"))  # an empty body
            await wait_for(open_df, iid, OrchestrationRuntimeStatus.Running)
            await open_df.terminate(iid, "done")
            await wait_for(open_df, iid, OrchestrationRuntimeStatus.Terminated)
        finally:
            await http_utils._close_session()
            http_utils._client_session = saved
        async with httpx.AsyncClient(base_url=base) as http:  # no key: bodies must say JSON
            for content_type in ("text/plain", "application/octet-stream"):
                refused = await http.post(
                    f"{API}/orchestrators/big_payload", content=b'"x"', headers={"content-type": content_type}
                )
                assert refused.status_code == 400, (content_type, refused.text)
                assert "must be JSON sent as application/json" in refused.json()["error"]


async def test_a_bearer_token_lifts_the_content_type_check_and_is_still_checked() -> None:
    settings = HttpSettings(
        auth="entra",
        entra_audience="api://durablehub-test",
        entra_issuer="https://issuer.example/",
        entra_jwks_url="http://127.0.0.1:9/keys",
        entra_roles=["Hub.Admin"],
    )
    app = create_app(TaskHubSettings(connection_string="UseDevelopmentStorage=true"), settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        url, plain = f"{API}/orchestrators/hello_cities", {"content-type": "text/plain"}
        assert (await http.post(url, content=b'"x"', headers=plain)).status_code == 400
        carried = await http.post(
            url, content=b'"x"', headers={**plain, "Authorization": "Bearer not-a-token"}
        )
        assert carried.status_code == 401, carried.text  # past the content-type check, not past the token's
        # Basic credentials a browser resends by itself are no bearer token.
        basic = await http.post(url, content=b'"x"', headers={**plain, "Authorization": "Basic dTpw"})
        assert basic.status_code == 400 and "application/json" in basic.json()["error"], basic.text
