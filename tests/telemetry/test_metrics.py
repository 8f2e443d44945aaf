"""``durablehub worker --metrics-port``: a real worker process serves Prometheus metrics. The
work-item backlog shows while a fan-out waits at a gate and is gone after; the other
instruments tell what a small run did."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient
from prometheus_client.parser import text_string_to_metric_families

from durablehub.azurite import free_port
from durablehub.client import DurableClient
from durablehub.errors import ConfigurationError
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.telemetry.prometheus import serve_metrics
from tests.telemetry.processes import durablehub_process

FANOUT = 12
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(http: httpx.Client) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_")}
            samples[(sample.name, frozenset(labels.items()))] = sample.value
    return samples


def _values(samples: Samples, name: str, /, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    wanted = set(labels.items())
    return {key: value for (metric, key), value in samples.items() if metric == name and wanted <= key}


def _until(scrape: Callable[[], Samples], check: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + 60  # a bound for a broken run, not a measurement
    while True:
        samples = scrape()
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"never {what}: {samples}"
        time.sleep(0.2)


@pytest.mark.azurite
def test_prometheus_endpoint_of_a_worker(hub: TaskHub, tmp_path: Path) -> None:
    settings = hub.settings
    port = free_port()
    gate = tmp_path / "gate"
    work_items = f"{settings.task_hub.lower()}-workitems"
    args = ["worker", "tests.telemetry.apps:app", "--metrics-port", str(port)]
    with (
        durablehub_process(args, settings, tmp_path / "worker.log") as worker,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        DurableClient(settings) as client,
    ):

        def scrape() -> Samples:
            try:
                return _scrape(http)
            except httpx.TransportError:  # not listening yet
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                return {}

        fan_out = client.schedule_new_orchestration("GatedFanOut", input={"gate": str(gate), "count": FANOUT})
        backlog = _until(
            scrape,
            lambda s: (
                _values(s, "durablehub_queue_depth", queue=work_items).get(
                    frozenset({("queue", work_items)}), 0
                )
                > 0
            ),
            "a work-item backlog",
        )
        assert _values(backlog, "durablehub_queue_oldest_message_age_seconds", queue=work_items)
        active = _until(
            scrape,
            lambda s: sum(_values(s, "durablehub_activities_active").values()) > 0,
            "an activity running",
        )
        assert sum(_values(active, "durablehub_activities_active").values()) <= FANOUT

        gate.touch()
        assert client.wait_for_orchestration_completion(fan_out, timeout=60).runtime_status is (
            OrchestrationStatus.COMPLETED
        )
        failing = client.schedule_new_orchestration("ProcessOrder", input={"id": "o-9", "approval": True})
        client.raise_orchestration_event(failing, "Approval", data=None)  # not approved: ShipOrder fails
        assert client.wait_for_orchestration_completion(failing, timeout=60).runtime_status is (
            OrchestrationStatus.FAILED
        )

        hub.control_queues[0].send_raw("not a message")  # unreadable: to the poison queue at once

        def drained(s: Samples) -> bool:
            depths = _values(s, "durablehub_queue_depth")
            return len(depths) == settings.partition_count + 1 and not any(depths.values())

        after = _until(
            scrape, lambda s: drained(s) and bool(_values(s, "durablehub_poison_moves_total")), "drained"
        )

    assert _values(after, "durablehub_activity_duration_seconds_count", name="Gated") == {
        frozenset({("name", "Gated")}): FANOUT
    }
    episodes = _values(after, "durablehub_orchestration_episode_duration_seconds_count", name="GatedFanOut")
    assert sum(episodes.values()) >= 2  # the start, and at least one episode of answers
    assert sum(_values(after, "durablehub_orchestration_episodes_active").values()) == 0
    assert sum(_values(after, "durablehub_activities_active").values()) == 0
    failures = _values(after, "durablehub_failures_total")
    assert failures == {
        frozenset({("type", "activity"), ("name", "ShipOrder"), ("error_type", "builtins.ValueError")}): 1,
        frozenset(
            {
                ("type", "orchestration"),
                ("name", "ProcessOrder"),
                ("error_type", "durablehub.errors.TaskFailedError"),
            }
        ): 1,
    }
    owned = _values(after, "durablehub_partitions_owned")
    assert list(owned.values()) == [settings.partition_count]
    requests = _values(after, "durablehub_storage_requests_total")
    assert requests[frozenset({("operation", "queue.receive")})] > 0
    assert requests[frozenset({("operation", "table.batch")})] > 0
    control = f"{settings.task_hub.lower()}-control-00"
    assert _values(after, "durablehub_poison_moves_total") == {frozenset({("queue", control)}): 1}
    assert not _values(after, "durablehub_partitions_takeovers_total")  # one worker: nothing taken over


def test_metrics_without_the_otel_extra_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.prometheus", None)  # as if not installed
    settings = TaskHubSettings(task_hub="metrics", connection_string="UseDevelopmentStorage=true")
    with pytest.raises(ConfigurationError, match=r"needs the otel extra .*pip install 'durablehub\[otel\]'"):
        serve_metrics(free_port(), "127.0.0.1", settings)


def _scraper(http: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> Callable[[], Samples]:
    def scrape() -> Samples:
        try:
            return _scrape(http)
        except httpx.TransportError:  # not listening yet
            assert process.poll() is None, log.read_text()
            return {}

    return scrape


def hello(ctx: Any, name: str) -> str:
    return f"Hello {name}!"


def greeting(ctx: Any, name: str):
    return (yield ctx.call_activity(hello, input=name))


def _dead_worker_held(hub: TaskHub) -> int:
    """Every partition held by a worker that died: its blob leases ended (broken here, as if
    expired) but still name it as owner. Returns how many."""
    settings = hub.settings
    partitions = settings.names.control_queues
    for pid in partitions:
        assert hub.leases.acquire(pid, "dead-worker", duration=timedelta(seconds=60)) is not None
    assert settings.connection_string is not None
    service = BlobServiceClient.from_connection_string(settings.connection_string.get_secret_value())
    with service.get_container_client(settings.names.leases_container) as container:
        for pid in partitions:
            BlobLeaseClient(container.get_blob_client(settings.names.lease_blob(pid))).break_lease(0)
    return len(partitions)


@pytest.mark.azurite
def test_prometheus_endpoint_of_a_sidecar(hub: TaskHub, tmp_path: Path) -> None:
    """``durablehub sidecar --metrics-port``: after an orchestration of an SDK worker ran
    through it, its endpoint serves durablehub's metrics; the partitions it took over from a
    dead worker are counted as lease takeovers (one process for both: CI time)."""
    worker_module = pytest.importorskip("durabletask.worker")
    settings = hub.settings
    taken = _dead_worker_held(hub)
    port, metrics_port = free_port(), free_port()
    args = ["sidecar", "--port", str(port), "--metrics-port", str(metrics_port)]
    log = tmp_path / "sidecar.log"
    with (
        durablehub_process(args, settings, log) as sidecar,
        httpx.Client(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10) as http,
        DurableClient(settings) as client,
    ):
        scrape = _scraper(http, sidecar, log)
        sdk = worker_module.TaskHubGrpcWorker(host_address=f"127.0.0.1:{port}")
        sdk.add_orchestrator(greeting)
        sdk.add_activity(hello)
        sdk.start()  # a sidecar takes partitions once an SDK worker is connected
        try:
            owned = _until(
                scrape,
                lambda s: sum(_values(s, "durablehub_partitions_owned").values()) == taken,
                "every partition owned",
            )
            assert _values(owned, "durablehub_partitions_takeovers_total") == {frozenset(): taken}
            iid = client.schedule_new_orchestration("greeting", input="Lima")
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state.runtime_status is OrchestrationStatus.COMPLETED, log.read_text()
            after = _until(  # before the SDK worker leaves (and the partitions with it)
                scrape,
                lambda s: bool(_values(s, "durablehub_activity_duration_seconds_count", name="hello")),
                "the activity's duration",
            )
        finally:
            sdk.stop()
    assert _values(after, "durablehub_activity_duration_seconds_count", name="hello") == {
        frozenset({("name", "hello")}): 1
    }
    episodes = _values(after, "durablehub_orchestration_episode_duration_seconds_count", name="greeting")
    assert sum(episodes.values()) >= 2  # the start, and the activity's answer
    assert list(_values(after, "durablehub_partitions_owned").values()) == [settings.partition_count]
    assert _values(after, "durablehub_storage_requests_total")[frozenset({("operation", "table.batch")})] > 0
    work_items = f"{settings.task_hub.lower()}-workitems"
    assert frozenset({("queue", work_items)}) in _values(after, "durablehub_queue_depth")
