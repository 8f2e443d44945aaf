"""The trace of a workflow run by two ``durablehub worker`` processes that export over
OTLP/HTTP to a receiver on loopback, started through the HTTP API with a ``traceparent``: one
tree, DurableTask.Core's names and kinds, nothing exported twice although the worker running
an activity is killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.http import HttpSettings, create_app
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.chaos import stop_gracefully
from tests.telemetry import spantree as st
from tests.telemetry.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.azurite

ROOT = Path(__file__).resolve().parents[2]
API = "/runtime/webhooks/durabletask"
KEY = "test-key-0123456789abcdef"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _worker(settings: TaskHubSettings, endpoint: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durablehub",
                "worker",
                "tests.telemetry.trace_apps:app",
                "--log-level",
                "INFO",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
                "DURABLEHUB_ACTIVITY_VISIBILITY_SECONDS": "5",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_SERVICE_NAME": "orders-worker",
                "OTEL_BSP_SCHEDULE_DELAY": "50",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


async def test_one_trace_across_processes_and_a_kill(
    settings: TaskHubSettings, hub: TaskHub, receiver: OtlpReceiver, spans, tmp_path: Path
) -> None:
    pause = {"started": str(tmp_path / "started"), "go": str(tmp_path / "go")}
    order = {"id": 7, "flaky_path": str(tmp_path / "flaky.txt"), "pause": pause}
    workers = [_worker(settings, receiver.endpoint, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        async with AsyncDurableClient(settings) as durable:
            app = create_app(
                http_settings=HttpSettings(key=KEY, allowed_hosts=["testserver"]), client=durable
            )
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"x-functions-key": KEY},
            ) as http:
                started = await http.post(
                    f"{API}/orchestrators/order_workflow/order-7",
                    json=order,
                    headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
                )
                assert started.status_code == 202, started.text

                # The worker that runs `pause` is killed while it runs (after the spans it
                # emitted before are exported); the activity runs again on another worker.
                _wait(lambda: Path(pause["started"]).exists(), "the pause activity")
                # Both: the client span ends in the parent's episode that also schedules `pause`,
                # on the worker about to be killed.
                _wait(
                    lambda: (
                        {"SERVER", "CLIENT"}
                        <= {s.kind for s in receiver.spans() if s.name == "orchestration:payment"}
                    ),
                    "the sub-orchestration's spans",
                )
                pid = int(Path(pause["started"]).read_text())
                victim = next(w for w in workers if w.pid == pid)
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=10)
                Path(pause["started"]).unlink()
                Path(pause["go"]).touch()
                workers.append(_worker(settings, receiver.endpoint, tmp_path / "worker-2.log"))

                raised = await http.post(f"{API}/instances/order-7/raiseEvent/Approval", json=True)
                assert raised.status_code == 202, raised.text
                state = await durable.wait_for_orchestration_completion("order-7", timeout=120)
                assert state.runtime_status.name == "COMPLETED", state
    finally:
        stop_gracefully(workers)  # graceful: their batched spans are flushed at exit
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("worker-*.log"))

    exported = receiver.spans()
    assert receiver.content_types == {"application/x-protobuf"}
    assert receiver.services == {"orders-worker"}
    found = st.ours(st.from_sdk(spans.get_finished_spans()) + exported, CALLER_TRACE)
    st.no_duplicates(found)
    create = st.one(found, "create_orchestration:order_workflow", "PRODUCER")
    # The HTTP API continued the caller's traceparent: directly, or under the request span of
    # the web framework where it makes one (FastAPI does, when an SDK is installed).
    top = st.is_one_tree(found)
    assert top.parent_id == CALLER_SPAN, logs
    assert top in st.ancestors(found, create) + [create], st.describe(found)
    root = st.one(found, "orchestration:order_workflow", "SERVER")
    assert root.parent_id == create.span_id and root.status == "OK"
    sub = st.one(found, "orchestration:payment", "SERVER")
    assert st.parent(found, sub).parent_id == root.span_id
    flaky = [s for s in found if s.name == "activity:flaky" and s.kind == "SERVER"]
    assert sorted(s.status for s in flaky) == ["ERROR", "UNSET"]
    # The killed run of `pause` never ended: one server span, from the run that completed.
    assert st.parent(found, st.one(found, "activity:pause", "SERVER")).parent_id == root.span_id
    assert st.one(found, "orchestration:order_workflow:timer").parent_id == root.span_id
    entity = st.one(found, "entity:counter:add", "SERVER")
    assert st.parent(found, entity) == st.one(found, "entity:counter:add", "CLIENT")
    assert st.parent(found, entity).parent_id == root.span_id
    assert st.parent(found, st.one(found, "activity:ship", "SERVER")).parent_id == root.span_id
    assert all(s.trace_id == CALLER_TRACE for s in found)
