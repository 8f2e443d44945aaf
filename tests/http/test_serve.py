"""``durablehub serve --app``: the async HTTP API pattern end to end over real HTTP, one process
serving the API and running the worker; the key never reaches the access log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from durablehub.azurite import free_port
from durablehub.taskhub.hub import TaskHub
from tests.http.conftest import API, KEY

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]


def test_async_http_api_pattern_end_to_end(hub: TaskHub, tmp_path: Path) -> None:
    settings = hub.settings
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "durablehub", "serve", "--app", "tests.e2e.apps:app", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
                "DURABLEHUB_HTTP_KEY": KEY,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:  # the port opens once the worker has started
                try:
                    if http.get(f"{API}/openapi.json", params={"code": KEY}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)

            assert http.post(f"{API}/orchestrators/hello_cities").status_code == 401
            started = http.post(f"{API}/orchestrators/fan_out_fan_in", json=5, params={"code": KEY})
            assert started.status_code == 202
            status_url = started.json()["statusQueryGetUri"]
            assert status_url.startswith(f"{base}{API}/instances/{started.json()['id']}?")
            assert KEY not in started.text and KEY not in started.headers["Location"]
            assert http.get(status_url).status_code == 401  # the URL alone does not reach the hub

            deadline = time.monotonic() + 30
            keyed = {"x-functions-key": KEY}
            polled = http.get(status_url, headers=keyed)  # as a client does: the URL as given
            while polled.status_code == 202:
                assert time.monotonic() < deadline, polled.json()
                time.sleep(0.2)
                polled = http.get(polled.headers["Location"], headers=keyed)
            assert polled.status_code == 200
            assert polled.json()["runtimeStatus"] == "Completed" and polled.json()["output"] == 20
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    log = log_path.read_text()
    assert "GET /runtime/webhooks/durabletask/openapi.json?code=***" in log
    assert KEY not in log
