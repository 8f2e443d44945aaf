"""The instance commands as a user runs them, against Azurite with an in-process worker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from durablehub.cli.main import app
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker
from tests.e2e.apps import app as e2e_app

pytestmark = pytest.mark.azurite
runner = CliRunner()


@pytest.fixture
def env(hub: TaskHub) -> Iterator[dict[str, str]]:
    settings = hub.settings
    with Worker(e2e_app, settings):
        yield {
            "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
            "DURABLEHUB_TASK_HUB": settings.task_hub,
        }


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    if code:  # the error is the last line, without a traceback
        assert "Traceback" not in result.output
        assert result.output.strip().splitlines()[-1].startswith("error: ")
    return result.output


def wait_status(env: dict[str, str], iid: str, status: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        payload = json.loads(cli(env, "status", iid, "--json"))
        if payload["runtimeStatus"] == status:
            return payload
        assert time.monotonic() < deadline, payload
        time.sleep(0.1)


def test_start_status_history(env: dict[str, str]) -> None:
    iid = cli(env, "start", "hello_cities").strip()
    assert len(iid) == 32
    done = json.loads(
        cli(env, "start", "fan_out_fan_in", "--input", "3", "--id", "fan-1", "--wait", "30", "--json")
    )
    assert done["instanceId"] == "fan-1" and done["output"] == 6

    wait_status(env, iid, "Completed")
    text = cli(env, "status", iid, "--history")
    assert "status        Completed" in text and '"Hello London!"' in text
    assert "TaskCompleted" in text and "say_hello" in text
    events = json.loads(cli(env, "history", iid, "--json"))
    assert [e["EventType"] for e in events][0] == "ExecutionStarted"
    table = cli(env, "history", iid)
    assert table.splitlines()[0].split() == ["ID", "EVENT", "TIME", "DETAIL"]

    failed = cli(env, "start", "child", "--input", "-1", "--wait", "30", code=1)
    assert "failed: builtins.ValueError: negative input -1" in failed


def test_events_and_management(env: dict[str, str]) -> None:
    iid = cli(env, "start", "approval", "--input", "60", "--json")
    iid = json.loads(iid)["id"]
    wait_status(env, iid, "Running")
    assert "sent" in cli(env, "raise-event", iid, "Approval", "--data", '"ok"')
    assert wait_status(env, iid, "Completed")["output"] == {"approved": "ok"}

    other = cli(env, "start", "approval", "--input", "60").strip()
    wait_status(env, other, "Running")
    cli(env, "suspend", other, "--reason", "pause")
    wait_status(env, other, "Suspended")
    cli(env, "resume", other)
    wait_status(env, other, "Running")
    cli(env, "terminate", other, "--reason", "enough")
    assert wait_status(env, other, "Terminated")["output"] == "enough"

    broken = json.loads(cli(env, "start", "child", "--input", "-1", "--json"))["id"]
    wait_status(env, broken, "Failed")
    assert "rewind requested" in cli(env, "rewind", broken)

    restarted = cli(env, "restart", iid, "--new-id").strip()
    assert restarted != iid
    wait_status(env, restarted, "Running")

    assert "purged 1 instance" in cli(env, "purge", other)
    assert "no orchestration instance" in cli(env, "purge", other, code=1)
    purged = json.loads(cli(env, "purge", "--status", "Completed", "--yes", "--json"))
    assert purged["instancesDeleted"] >= 1
    cli(env, "start", "hello_cities", "--id", f"{iid}-again")
    wait_status(env, f"{iid}-again", "Completed")
    cut = cli(env, "purge", "--status", "Completed", "--yes", "--timeout", "0")
    assert "purged 0 instances; not all: the timeout ran out" in cut and "Run it again" in cut
    assert json.loads(cli(env, "purge", "--status", "Completed", "--yes", "--timeout", "0", "--json")) == {
        "instancesDeleted": 0,
        "isComplete": False,
    }
    assert "must be a number of seconds >= 0" in cli(
        env, "purge", "-s", "Completed", "-y", "--timeout", "-1", code=1
    )
    shown = cli(env, "purge", "--status", "Completed", "--yes")
    assert "purge: 1 of 1 instances done" in shown and "purged 1 instance" in shown


def test_list(env: dict[str, str]) -> None:
    prefix = f"ls-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        cli(env, "start", "fan_out_fan_in", "--input", "1", "--id", f"{prefix}-{i}", "--wait", "30")
    page = json.loads(cli(env, "list", "--prefix", prefix, "--top", "2", "--json"))
    assert len(page["instances"]) == 2 and page["continuationToken"]
    every = json.loads(cli(env, "list", "--prefix", prefix, "--top", "2", "--all", "--json"))
    assert sorted(i["instanceId"] for i in every["instances"]) == [f"{prefix}-{i}" for i in range(3)]
    assert every["continuationToken"] is None
    text = cli(env, "list", "--prefix", prefix, "--status", "completed")
    assert text.splitlines()[0].split() == ["INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"]
    assert text.count("Completed") == 3
    assert "unknown status Sleeping" in cli(env, "list", "--status", "Sleeping", code=1)


def test_errors_are_one_line(env: dict[str, str]) -> None:
    assert "no orchestration instance with id 'nope'" in cli(env, "status", "nope", code=1)
    assert "no orchestration instance" in cli(env, "terminate", "nope", code=1)
    assert "input is not valid JSON" in cli(env, "start", "hello_cities", "--input", "{bad", code=1)
    assert "reserved for entities" in cli(env, "start", "hello_cities", "--id", "@x", code=1)
    assert "at least one filter" in cli(env, "purge", code=1)
    iid = cli(env, "start", "hello_cities", "--wait", "30", "--json")
    iid = json.loads(iid)["instanceId"]
    assert "Completed" in cli(env, "raise-event", iid, "Approval", code=1)
