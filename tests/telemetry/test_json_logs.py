"""DURABLEHUB_LOG_FORMAT=json: a worker and ``durablehub serve``, as real processes, write one
JSON object per line (status lines, tracking events, uvicorn's access log), with no payload
(unless asked for) and no secret: not the account key, not the HTTP key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from durablehub.azurite import free_port
from durablehub.client import DurableClient
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.accounts import DEV_ACCOUNT_KEY
from durablehub.taskhub.hub import TaskHub
from tests.telemetry.processes import durablehub_process, json_records

pytestmark = pytest.mark.azurite

PAYLOAD = "card-4242-4242-4242-4242"  # in the input: must not reach any log
KEY = "json-logs-http-key-0123456789"
API = "/runtime/webhooks/durabletask"


def _no_secret(text: str, settings: TaskHubSettings) -> None:
    assert settings.connection_string is not None
    assert DEV_ACCOUNT_KEY not in text
    assert settings.connection_string.get_secret_value() not in text
    assert PAYLOAD not in text


def test_worker_writes_one_json_object_per_line(hub: TaskHub, tmp_path: Path) -> None:
    settings = hub.settings
    log_path = tmp_path / "worker.log"
    with durablehub_process(
        ["worker", "tests.telemetry.apps:app"], settings, log_path, DURABLEHUB_LOG_FORMAT="json"
    ):
        with DurableClient(settings) as client:
            iid = client.schedule_new_orchestration("ProcessOrder", input={"id": "o-1", "card": PAYLOAD})
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state is not None and state.runtime_status is OrchestrationStatus.COMPLETED
    text = log_path.read_text()
    records = json_records(text)
    _no_secret(text, settings)
    assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records)
    assert any("running on task hub" in r["message"] for r in records)
    tracked = [(r["state"], r["functionName"]) for r in records if r["logger"] == "durablehub.tracking"]
    assert ("Started", "ProcessOrder") in tracked and ("Completed", "ProcessPayment") in tracked
    assert ("Completed", "ProcessOrder") in tracked


def test_serve_writes_one_json_object_per_line(hub: TaskHub, tmp_path: Path) -> None:
    settings = hub.settings
    port = free_port()
    log_path = tmp_path / "serve.log"
    metrics_port = free_port()
    args = [
        "serve",
        "--app",
        "tests.telemetry.apps:app",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
    ]
    env = {"DURABLEHUB_LOG_FORMAT": "json", "DURABLEHUB_HTTP_KEY": KEY}
    with (
        durablehub_process(args, settings, log_path, **env) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
    ):
        deadline = time.monotonic() + 30
        while True:  # the port opens once the worker has started
            try:
                if http.get(f"{API}/openapi.json", params={"code": KEY}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        started = http.post(
            f"{API}/orchestrators/ProcessOrder", json={"id": "o-2", "card": PAYLOAD}, params={"code": KEY}
        )
        assert started.status_code == 202, started.text
        with DurableClient(settings) as client:
            state = client.wait_for_orchestration_completion(started.json()["id"], timeout=60)
            assert state is not None and state.runtime_status is OrchestrationStatus.COMPLETED
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text  # serve's metrics too
    lines = scraped.splitlines()
    work_items = f'queue="{settings.task_hub.lower()}-workitems"'
    assert any(line.startswith("durablehub_queue_depth{") and work_items in line for line in lines)
    payment = 'name="ProcessPayment"'
    assert any(
        line.startswith("durablehub_activity_duration_seconds_count{") and payment in line for line in lines
    )
    text = log_path.read_text()
    records = json_records(text)
    _no_secret(text, settings)
    assert KEY not in text
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("openapi.json?code=***" in r["message"] for r in access), access
    assert any(r["logger"] == "durablehub.tracking" and r["state"] == "Completed" for r in records)


def test_a_command_line_error_is_a_json_line() -> None:
    env = {**os.environ, "DURABLEHUB_LOG_FORMAT": "json", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    done = subprocess.run(
        [sys.executable, "-m", "durablehub", "status", "some-id", "--task-hub", "1bad"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    (record,) = json_records(done.stderr)
    assert record["level"] == "ERROR" and "invalid task hub name '1bad'" in record["message"]
