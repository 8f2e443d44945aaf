"""Every route of the management API and every status code it answers, against Azurite with a
real worker (python-sdks.md §5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.http.conftest import API, new_id, poll_until_done, wait_for_status

pytestmark = pytest.mark.azurite

CHECK_STATUS_KEYS = {
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "rewindPostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
}


async def start(http: httpx.AsyncClient, name: str, data: object = None, iid: str | None = None) -> str:
    url = f"{API}/orchestrators/{name}" + (f"/{iid}" if iid else "")
    response = await http.post(url, json=data)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def finished(http: httpx.AsyncClient, name: str, data: object = None) -> str:
    iid = await start(http, name, data)
    assert (await poll_until_done(http, f"{API}/instances/{iid}")).status_code == 200
    return iid


async def failed(http: httpx.AsyncClient) -> str:
    iid = await start(http, "child", -1)
    response = await poll_until_done(http, f"{API}/instances/{iid}")
    assert response.json()["runtimeStatus"] == "Failed"
    return iid


# ------------------------------------------------------------------------------------ start


async def test_start_returns_202_with_the_nine_management_urls(http: httpx.AsyncClient, durable) -> None:
    response = await http.post(f"{API}/orchestrators/hello_cities")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == CHECK_STATUS_KEYS
    iid = body["id"]
    assert response.headers["Location"] == body["statusQueryGetUri"]
    assert response.headers["Retry-After"] == "10"
    status_url = urlsplit(body["statusQueryGetUri"])
    assert status_url.path == f"{API}/instances/{iid}"
    assert parse_qs(status_url.query) == {"taskHub": [durable.settings.task_hub]}  # no key
    assert body["sendEventPostUri"].startswith(
        f"http://testserver{API}/instances/{iid}/raiseEvent/{{eventName}}?"
    )
    assert "/terminate?reason={text}&taskHub=" in body["terminatePostUri"]
    assert "/rewind?reason={text}&" in body["rewindPostUri"]
    assert "/suspend?reason={text}&" in body["suspendPostUri"]
    assert "/resume?reason={text}&" in body["resumePostUri"]
    assert urlsplit(body["restartPostUri"]).path.endswith("/restart")
    assert body["purgeHistoryDeleteUri"] == body["statusQueryGetUri"]

    # The async HTTP API pattern: poll the status URL (with the key in a header) until 200.
    done = await poll_until_done(http, body["statusQueryGetUri"])
    assert done.status_code == 200
    assert done.json()["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_start_with_instance_id_and_input(http: httpx.AsyncClient) -> None:
    iid = new_id()
    response = await http.post(f"{API}/orchestrators/fan_out_fan_in/{iid}", json=4)
    assert response.status_code == 202 and response.json()["id"] == iid
    done = await poll_until_done(http, f"{API}/instances/{iid}")
    assert done.json()["input"] == 4 and done.json()["output"] == 12


async def test_start_an_id_that_is_running_is_409(http: httpx.AsyncClient) -> None:
    iid = await start(http, "approval", 60, new_id())
    again = await http.post(f"{API}/orchestrators/approval/{iid}", json=60)
    assert again.status_code == 409 and "already exists" in again.json()["error"]


async def test_start_with_timeout_answers_with_the_result(http: httpx.AsyncClient) -> None:
    done = await http.post(f"{API}/orchestrators/fan_out_fan_in?timeout=30", json=3)
    assert done.status_code == 200 and done.json() == 6
    failing = await http.post(f"{API}/orchestrators/child?timeout=30", json=-1)
    assert failing.status_code == 500
    assert failing.json()["runtimeStatus"] == "Failed" and "negative input -1" in failing.json()["output"]
    waiting = await http.post(f"{API}/orchestrators/approval?timeout=0.5", json=60)
    assert waiting.status_code == 202 and set(waiting.json()) == CHECK_STATUS_KEYS


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        (
            "orchestrators/hello_cities",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "not valid JSON",
        ),
        (
            "orchestrators/hello_cities",
            {"content": b"a=1", "headers": {"content-type": "text/plain"}},
            "must be JSON",
        ),
        ("orchestrators/no_such_orchestrator", {}, "no orchestrator named 'no_such_orchestrator'"),
        ("orchestrators/hello_cities/@entity-like", {}, "reserved for entities"),
        ("orchestrators/hello_cities?timeout=-1", {}, "timeout"),
        ("orchestrators/hello_cities?taskHub=OtherHub", {}, "not 'OtherHub'"),
    ],
)
async def test_start_with_bad_input_is_400(
    http: httpx.AsyncClient, path: str, kwargs: dict, message: str
) -> None:
    response = await http.post(f"{API}/{path}", **kwargs)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


# ----------------------------------------------------------------------------------- status


async def test_status_is_202_while_running_and_200_when_done(http: httpx.AsyncClient) -> None:
    iid = await start(http, "status_reporter")
    body = await wait_for_status(http, iid, "Running")
    running = await http.get(f"{API}/instances/{iid}?showInput=false")
    assert running.status_code == 202
    assert running.headers["Retry-After"] == "5"
    assert running.headers["Location"] == f"http://testserver{API}/instances/{iid}?showInput=false"
    assert "input" not in running.json()
    assert body["name"] == "status_reporter" and body["instanceId"] == iid
    assert set(body) == {
        "name",
        "instanceId",
        "runtimeStatus",
        "input",
        "customStatus",
        "output",
        "createdTime",
        "lastUpdatedTime",
    }
    assert body["createdTime"].endswith("Z")

    assert (await http.post(f"{API}/instances/{iid}/raiseEvent/go", json={"v": 1})).status_code == 202
    done = await poll_until_done(http, f"{API}/instances/{iid}")
    assert done.status_code == 200
    assert done.json()["output"] == {"v": 1}
    assert done.json()["customStatus"] == {"stage": "done", "value": {"v": 1}}


async def test_status_with_history(http: httpx.AsyncClient) -> None:
    iid = await finished(http, "hello_cities")
    plain = (await http.get(f"{API}/instances/{iid}?showHistory=true")).json()
    events = plain["historyEvents"]
    kinds = [e["EventType"] for e in events]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
    assert kinds.count("TaskCompleted") == 3 and "TaskScheduled" not in kinds
    assert "OrchestratorStarted" not in kinds
    completed = [e for e in events if e["EventType"] == "TaskCompleted"]
    assert completed[0]["FunctionName"] == "say_hello" and "ScheduledTime" in completed[0]
    assert "Result" not in completed[0]

    detailed = (await http.get(f"{API}/instances/{iid}?showHistory=true&showHistoryOutput=true")).json()
    results = [e["Result"] for e in detailed["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert results == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_status_of_a_failed_instance(http: httpx.AsyncClient) -> None:
    iid = await failed(http)
    plain = await http.get(f"{API}/instances/{iid}")
    assert plain.status_code == 200
    assert plain.json()["failureDetails"]["errorMessage"] == "negative input -1"
    strict = await http.get(f"{API}/instances/{iid}?returnInternalServerErrorOnFailure=true")
    assert strict.status_code == 500 and strict.json()["runtimeStatus"] == "Failed"


async def test_status_of_an_unknown_instance_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get(f"{API}/instances/{new_id('unknown')}")
    assert response.status_code == 404 and "no orchestration instance" in response.json()["error"]


# ----------------------------------------------------------------------------------- events


async def test_raise_event(http: httpx.AsyncClient) -> None:
    iid = await start(http, "approval", 60)
    await wait_for_status(http, iid, "Running")
    sent = await http.post(f"{API}/instances/{iid}/raiseEvent/Approval", json="yes")
    assert sent.status_code == 202
    done = await poll_until_done(http, f"{API}/instances/{iid}")
    assert done.json()["output"] == {"approved": "yes"}

    late = await http.post(f"{API}/instances/{iid}/raiseEvent/Approval", json="again")
    assert late.status_code == 410 and "Completed" in late.json()["error"]
    unknown = await http.post(f"{API}/instances/{new_id('unknown')}/raiseEvent/Approval", json=1)
    assert unknown.status_code == 404


async def test_raise_event_with_a_body_that_is_not_json_is_400(http: httpx.AsyncClient) -> None:
    iid = await start(http, "approval", 60)
    bad = await http.post(
        f"{API}/instances/{iid}/raiseEvent/Approval",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400
    form = await http.post(f"{API}/instances/{iid}/raiseEvent/Approval", data={"a": "1"})
    assert form.status_code == 400 and "application/x-www-form-urlencoded" in form.json()["error"]


# --------------------------------------------------------------------- management operations


async def test_terminate(http: httpx.AsyncClient) -> None:
    iid = await start(http, "approval", 60)
    await wait_for_status(http, iid, "Running")
    assert (await http.post(f"{API}/instances/{iid}/terminate?reason=not+needed")).status_code == 202
    body = await wait_for_status(http, iid, "Terminated")
    assert body["output"] == "not needed"
    assert (await http.get(f"{API}/instances/{iid}")).status_code == 200
    again = await http.post(f"{API}/instances/{iid}/terminate")
    assert again.status_code == 410 and "Terminated" in again.json()["error"]
    assert (await http.post(f"{API}/instances/{new_id('unknown')}/terminate")).status_code == 404


async def test_suspend_and_resume(http: httpx.AsyncClient) -> None:
    iid = await start(http, "approval", 60)
    await wait_for_status(http, iid, "Running")
    assert (await http.post(f"{API}/instances/{iid}/suspend?reason=pause")).status_code == 202
    await wait_for_status(http, iid, "Suspended")
    suspended = await http.get(f"{API}/instances/{iid}")
    assert suspended.status_code == 202  # still in flight: poll on
    assert (await http.post(f"{API}/instances/{iid}/resume?reason=go")).status_code == 202
    await wait_for_status(http, iid, "Running")
    await http.post(f"{API}/instances/{iid}/raiseEvent/Approval", json=True)
    await poll_until_done(http, f"{API}/instances/{iid}")
    for op in ("suspend", "resume"):
        assert (await http.post(f"{API}/instances/{iid}/{op}")).status_code == 410
        assert (await http.post(f"{API}/instances/{new_id('unknown')}/{op}")).status_code == 404


async def test_rewind(http: httpx.AsyncClient) -> None:
    iid = await failed(http)
    assert (await http.post(f"{API}/instances/{iid}/rewind?reason=retry")).status_code == 202
    done = await finished(http, "hello_cities")
    completed = await http.post(f"{API}/instances/{done}/rewind")
    assert completed.status_code == 410
    running = await start(http, "approval", 60)
    await wait_for_status(http, running, "Running")
    assert (await http.post(f"{API}/instances/{running}/rewind")).status_code == 409
    assert (await http.post(f"{API}/instances/{new_id('unknown')}/rewind")).status_code == 404


async def test_restart(http: httpx.AsyncClient) -> None:
    iid = await finished(http, "fan_out_fan_in", 2)
    same = await http.post(f"{API}/instances/{iid}/restart")
    assert same.status_code == 202 and same.json()["id"] == iid
    assert set(same.json()) == CHECK_STATUS_KEYS
    assert (await poll_until_done(http, same.json()["statusQueryGetUri"])).json()["output"] == 2

    fresh = await http.post(f"{API}/instances/{iid}/restart?restartWithNewInstanceId=true")
    assert fresh.status_code == 202 and fresh.json()["id"] != iid
    assert (await poll_until_done(http, fresh.headers["Location"])).json()["output"] == 2
    assert (await http.post(f"{API}/instances/{new_id('unknown')}/restart")).status_code == 404


async def test_purge_one(http: httpx.AsyncClient) -> None:
    iid = await finished(http, "hello_cities")
    purged = await http.delete(f"{API}/instances/{iid}")
    assert purged.status_code == 200 and purged.json() == {"instancesDeleted": 1}
    assert (await http.get(f"{API}/instances/{iid}")).status_code == 404
    assert (await http.delete(f"{API}/instances/{iid}")).status_code == 404
    running = await start(http, "approval", 60)
    refused = await http.delete(f"{API}/instances/{running}")
    assert refused.status_code == 409


async def test_purge_by_filter(http: httpx.AsyncClient) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    done = [await finished(http, "fan_out_fan_in", 1) for _ in range(2)]
    running = await start(http, "approval", 60)
    missing = await http.delete(f"{API}/instances?runtimeStatus=Completed")
    assert missing.status_code == 400 and "createdTimeFrom" in missing.json()["error"]

    window = {"createdTimeFrom": since.isoformat(), "runtimeStatus": "Completed"}
    purged = await http.delete(f"{API}/instances", params=window)
    assert purged.status_code == 200 and purged.json()["instancesDeleted"] >= 2
    for iid in done:
        assert (await http.get(f"{API}/instances/{iid}")).status_code == 404
    assert (await http.get(f"{API}/instances/{running}")).status_code == 202
    again = await http.delete(f"{API}/instances", params=window)
    assert again.status_code == 404 and again.json()["instancesDeleted"] == 0


# ------------------------------------------------------------------------------------- list


async def test_list_with_filters_and_continuation(http: httpx.AsyncClient) -> None:
    prefix = new_id("list")
    for i in range(3):
        await start(http, "fan_out_fan_in", 1, f"{prefix}-{i}")
    for i in range(3):
        await poll_until_done(http, f"{API}/instances/{prefix}-{i}")
    waiting = await start(http, "approval", 60, f"{prefix}-waiting")

    first = await http.get(
        f"{API}/instances", params={"instanceIdPrefix": prefix, "top": 2, "showInput": "true"}
    )
    assert first.status_code == 200 and len(first.json()) == 2
    token = first.headers["x-ms-continuation-token"]
    rest = await http.get(
        f"{API}/instances/",
        params={"instanceIdPrefix": prefix, "top": 2},
        headers={"x-ms-continuation-token": token},
    )
    assert rest.status_code == 200 and "x-ms-continuation-token" not in rest.headers
    seen = [s["instanceId"] for s in first.json() + rest.json()]
    assert sorted(seen) == sorted([f"{prefix}-{i}" for i in range(3)] + [waiting])
    assert first.json()[0]["input"] in (1, 60)
    assert "input" not in rest.json()[0]

    completed = await http.get(
        f"{API}/instances", params={"instanceIdPrefix": prefix, "runtimeStatus": "Completed"}
    )
    assert sorted(s["instanceId"] for s in completed.json()) == [f"{prefix}-{i}" for i in range(3)]
    live = await http.get(
        f"{API}/instances", params={"instanceIdPrefix": prefix, "runtimeStatus": "running,pending"}
    )
    assert [s["instanceId"] for s in live.json()] == [waiting]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        await http.get(f"{API}/instances", params={"instanceIdPrefix": prefix, "createdTimeFrom": future})
    ).json() == []


async def test_list_by_name_and_version(http: httpx.AsyncClient, durable) -> None:
    prefix = new_id("versions")
    for version in ("1.0", "2.0", None):  # Pending is enough: nothing needs to run
        await durable.schedule_new_orchestration(
            "NotRegistered",
            instance_id=f"{prefix}-{version}",
            version=version,
            start_at=datetime.now(UTC) + timedelta(hours=1),
        )
    params: dict[str, object] = {"instanceIdPrefix": prefix, "name": "NotRegistered", "version": ["2.0", ""]}
    found = (await http.get(f"{API}/instances", params=params)).json()
    assert sorted((s["instanceId"], s.get("version")) for s in found) == [
        (f"{prefix}-2.0", "2.0"),
        (f"{prefix}-None", None),
    ]
    other = await http.get(f"{API}/instances", params={"instanceIdPrefix": prefix, "name": "Other"})
    assert other.json() == []


@pytest.mark.parametrize(
    "params", [{"runtimeStatus": "Sleeping"}, {"createdTimeFrom": "yesterday"}, {"top": "0"}, {"top": "many"}]
)
async def test_list_with_bad_filters_is_400(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await http.get(f"{API}/instances", params=params)
    assert response.status_code == 400, response.text


# ---------------------------------------------------------------------------------- openapi


async def test_openapi_describes_every_route_behind_the_key(http: httpx.AsyncClient) -> None:
    described = await http.get(f"{API}/openapi.json")
    assert described.status_code == 200
    paths = described.json()["paths"]
    assert set(paths) == {
        f"{API}/orchestrators/{{function_name}}",
        f"{API}/orchestrators/{{function_name}}/{{instance_id}}",
        f"{API}/instances",
        f"{API}/instances/{{instance_id}}",
        f"{API}/instances/{{instance_id}}/raiseEvent/{{event_name}}",
        *(
            f"{API}/instances/{{instance_id}}/{op}"
            for op in ("terminate", "suspend", "resume", "rewind", "restart")
        ),
        f"{API}/entities/{{name}}",
        f"{API}/entities/{{name}}/{{key}}",
    }
    status = paths[f"{API}/instances/{{instance_id}}"]["get"]
    assert {"200", "202", "400", "401", "404", "500"} <= set(status["responses"])
    assert "422" not in status["responses"]
    assert set(described.json()["components"]["securitySchemes"]) == {"code", "functionsKey"}
    anonymous = await http.get(f"{API}/openapi.json", headers={"x-functions-key": ""})
    assert anonymous.status_code == 401
