"""``durablehub serve --host 0.0.0.0 --metrics-port P``: the API answers other machines, but the
unauthenticated ``/metrics`` stays on loopback unless ``--metrics-host`` says otherwise."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from durablehub.azurite import free_port
from durablehub.settings import TaskHubSettings
from tests.http.conftest import API, KEY
from tests.telemetry.processes import durablehub_process

# serve reads no storage until a request needs it: the settings only need to parse.
OFFLINE = TaskHubSettings(task_hub="MetricsHost", connection_string="UseDevelopmentStorage=true")


def outside_address() -> str:
    """An address of this machine that is not loopback (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            pytest.skip("this machine has no non-loopback IPv4 address")
        address = str(probe.getsockname()[0])
    if address.startswith("127.") or address == "0.0.0.0":
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


def accepts(host: str, port: int) -> bool:
    """Does the port take a connection there? (A scrape would also read the hub's queues.)"""
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(tmp_path: Path, *extra: str) -> Iterator[tuple[int, int]]:
    port, metrics_port = free_port(), free_port()
    args = ["serve", "--host", "0.0.0.0", "--port", str(port), "--metrics-port", str(metrics_port), *extra]
    log_path = tmp_path / f"serve-{port}.log"
    env = {"DURABLEHUB_HTTP_KEY": KEY, "DURABLEHUB_HTTP_ALLOWED_HOSTS": "*"}
    with durablehub_process(args, OFFLINE, log_path, **env) as server:
        deadline = time.monotonic() + 60  # a loaded CI machine starts it slowly
        while not answers(f"http://127.0.0.1:{port}{API}/openapi.json?code={KEY}"):
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield port, metrics_port


def test_metrics_stay_on_loopback_when_the_api_serves_every_interface(tmp_path: Path) -> None:
    outside = outside_address()
    with serving(tmp_path) as (port, metrics_port):
        assert answers(f"http://{outside}:{port}{API}/openapi.json?code={KEY}")  # the API: everywhere
        assert accepts("127.0.0.1", metrics_port)
        assert not accepts(outside, metrics_port), f"/metrics is open to other machines on {outside}"


def test_metrics_host_opens_them_to_other_machines(tmp_path: Path) -> None:
    outside = outside_address()
    with serving(tmp_path, "--metrics-host", "0.0.0.0") as (_, metrics_port):
        assert accepts(outside, metrics_port)
