"""Bad input fails clearly, loses nothing, and fails only the instance it belongs to.

Covered elsewhere and not repeated here: non-JSON client input (tests/client/test_schedule.py,
test_async_client.py) and event data (test_wait_and_events.py), invalid instance ids
(test_schedule.py), invalid hub names (tests/taskhub/test_names.py,
tests/cli/test_hub_commands.py), the hub commands against a wrong key or an unreachable
endpoint (test_hub_commands.py), malformed queue messages (tests/taskhub/test_queues.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durablehub as dh
from durablehub.azurite import free_port
from durablehub.client import DurableClient
from durablehub.errors import PayloadError, StorageAuthenticationError, StorageUnreachableError
from durablehub.taskhub.hub import TaskHub
from tests.client.simulate import counts
from tests.conftest import StorageEmulator

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]
Status = dh.OrchestrationStatus

app = dh.App()


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.activity
def gives_a_set(ctx: dh.ActivityContext, _: None) -> set[int]:
    return {1, 2}


@app.activity
def big(ctx: dh.ActivityContext, size: int) -> str:
    return "é" * size


@app.orchestrator
def calls(ctx: dh.OrchestrationContext, spec: dict[str, Any]):
    return (yield ctx.call_activity(spec["activity"], input=spec.get("input")))


@app.orchestrator
def returns_an_object(ctx: dh.OrchestrationContext, _: None):
    yield ctx.call_activity(echo, input=1)
    return object()


@app.orchestrator
def passes_a_set(ctx: dh.OrchestrationContext, _: None):
    return (yield ctx.call_activity(echo, input={"when": {1, 2}}))


@app.orchestrator
def starts_a_child(ctx: dh.OrchestrationContext, name: str):
    return (yield ctx.call_sub_orchestrator(name, instance_id=f"{ctx.instance_id}-child"))


@app.orchestrator
def sizes(ctx: dh.OrchestrationContext, data: str):
    out = yield ctx.call_activity(big, input=len(data))
    ctx.set_custom_status(data[:100_000])
    return {"input": len(data), "output": out}


@pytest.fixture
def worker(settings: dh.TaskHubSettings, hub: TaskHub) -> Iterator[dh.Worker]:
    with dh.Worker(app, settings) as running:
        yield running


@pytest.fixture
def client(settings: dh.TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(settings, hub=hub) as durable_client:
        yield durable_client


def finished(client: DurableClient, iid: str) -> dh.OrchestrationState:
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None
    return state


def failure(client: DurableClient, iid: str) -> str:
    state = finished(client, iid)
    assert state.runtime_status is Status.FAILED, (state.runtime_status, state.serialized_output)
    assert state.failure_details is not None
    return f"{state.failure_details.error_type}: {state.failure_details.message}"


def test_values_that_are_not_json_fail_only_their_instance(client: DurableClient, worker: dh.Worker) -> None:
    client.schedule_new_orchestration("calls", input={"activity": "gives_a_set"}, instance_id="bad-result")
    client.schedule_new_orchestration("returns_an_object", instance_id="bad-output")
    client.schedule_new_orchestration("passes_a_set", instance_id="bad-activity-input")
    client.schedule_new_orchestration("calls", input={"activity": "echo", "input": 7}, instance_id="fine")

    assert "result of activity 'gives_a_set' is not JSON-serializable: value of type set" in failure(
        client, "bad-result"
    )
    assert "output of orchestrator 'returns_an_object' is not JSON-serializable: value of type object" in (
        failure(client, "bad-output")
    )
    assert "input of activity 'echo' is not JSON-serializable: value of type set at $.when" in failure(
        client, "bad-activity-input"
    )
    assert finished(client, "fine").get_output() == 7


def test_unknown_names_fail_only_their_instance(client: DurableClient, worker: dh.Worker) -> None:
    client.schedule_new_orchestration("NoSuchOrchestrator", instance_id="unknown-orchestrator")
    client.schedule_new_orchestration(
        "calls", input={"activity": "NoSuchActivity"}, instance_id="unknown-activity"
    )
    client.schedule_new_orchestration("starts_a_child", input="NoSuchChild", instance_id="unknown-child")
    client.schedule_new_orchestration("calls", input={"activity": "echo", "input": "ok"}, instance_id="fine")

    message = failure(client, "unknown-orchestrator")
    assert "no orchestrator named 'NoSuchOrchestrator' is registered" in message
    assert "'calls'" in message and "'returns_an_object'" in message  # the registered ones
    message = failure(client, "unknown-activity")
    assert "no activity named 'NoSuchActivity' is registered; registered activities: 'big', 'echo'" in message
    assert "no orchestrator named 'NoSuchChild' is registered" in failure(client, "unknown-child")
    assert "no orchestrator named 'NoSuchChild'" in failure(client, "unknown-child-child")
    assert finished(client, "fine").get_output() == "ok"
    assert worker.owned_partitions  # the worker is still running its partitions


def test_a_termination_output_that_is_not_json_is_refused_before_sending(
    client: DurableClient, settings: dh.TaskHubSettings, hub: TaskHub
) -> None:
    client.schedule_new_orchestration("calls", input={"activity": "echo"}, instance_id="target")
    before = counts(settings)
    with pytest.raises(PayloadError, match=r"not JSON-serializable: value of type set"):
        client.terminate_orchestration("target", output={1})
    assert counts(settings) == before  # nothing was sent


def test_large_payloads_travel_through_blobs(client: DurableClient, worker: dh.Worker, hub: TaskHub) -> None:
    """There is no payload size limit of durablehub's own: queue messages over 45 KiB and table
    properties over 60 KiB go to gzip blobs, as the reference does. A megabyte each way here."""
    data = "ü" * 500_000
    client.schedule_new_orchestration("sizes", input=data, instance_id="large")
    state = finished(client, "large")
    assert state.runtime_status is Status.COMPLETED, state.failure_details
    assert state.get_output() == {"input": 500_000, "output": "é" * 500_000}
    assert state.get_custom_status() == data[:100_000]
    assert state.get_input() == data
    assert len(hub.large_messages.list_instance_blobs("large")) >= 4  # start, result, output, status


def wrong_key(azurite: StorageEmulator) -> str:
    return azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")


def closed_port() -> str:
    port = free_port()
    return (
        f"AccountName=devstoreaccount1;AccountKey=eA==;BlobEndpoint=http://127.0.0.1:{port}/x;"
        f"QueueEndpoint=http://127.0.0.1:{port}/x;TableEndpoint=http://127.0.0.1:{port}/x"
    )


def test_a_refused_key_or_unreachable_endpoint_fails_fast_in_the_client(azurite: StorageEmulator) -> None:
    refused = dh.TaskHubSettings(task_hub="KeyHub", connection_string=wrong_key(azurite))
    with DurableClient(refused) as client, pytest.raises(StorageAuthenticationError) as caught:
        client.schedule_new_orchestration("calls", instance_id="x")
    assert str(caught.value) == (
        "storage refused the credentials (HTTP 403): check the account key, SAS token or identity "
        "for account 'devstoreaccount1'"
    )

    # Refused at once: one connection retry, not the SDK's default ~10-18 s of them.
    unreachable = dh.TaskHubSettings(task_hub="GoneHub", connection_string=closed_port())
    started = time.monotonic()
    with DurableClient(unreachable) as client, pytest.raises(StorageUnreachableError) as gone:
        client.get_orchestration_state("x")
    assert time.monotonic() - started < 8, "no hang"
    assert str(gone.value).startswith(
        "cannot reach the storage account 'devstoreaccount1': ServiceRequestError"
    )
    assert "\n" not in str(gone.value)


@pytest.mark.parametrize("which", ["wrong key", "unreachable"])
def test_durablehub_worker_refuses_to_start_with_a_clear_error(azurite: StorageEmulator, which: str) -> None:
    connection = wrong_key(azurite) if which == "wrong key" else closed_port()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "durablehub", "worker", "tests.reliability.test_bad_input:app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": connection, "DURABLEHUB_TASK_HUB": "WorkerHub"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 20, "no hang"  # a process start and one retry
    expected = (
        "refused the credentials (HTTP 403)" if which == "wrong key" else "cannot reach the storage account"
    )
    [line] = result.stderr.splitlines()  # one line, no traceback, no unclosed-session noise
    assert line.startswith("error: ") and expected in line and "AAAA" not in line, result.stderr
