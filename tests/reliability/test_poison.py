"""Poison messages (#553): what can never be processed leaves its queue instead of being retried
forever, and nothing else of the partition waits for it.

The crash tests run ``durablehub worker`` processes whose code calls ``os._exit`` while a
marker file exists, restarting each dead worker as a supervisor would, with
``max_dequeue_count=1`` and 5 s visibility timeouts so that they end within a minute.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import durablehub as dh
from durablehub.cli.main import app as cli_app
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import partition_index
from tests.e2e.apps import app as e2e_app
from tests.reliability.poison_apps import CRASH_EXIT_CODE
from tests.runtime.apps import app as runtime_app

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


class Supervisor:
    """Keeps one ``durablehub worker`` running: restarts it each time it crashes."""

    def __init__(self, settings: TaskHubSettings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self._stop = threading.Event()
        self._process = self._start()
        self.crashes = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self) -> subprocess.Popen[bytes]:
        log = open(self._log_dir / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        with log:
            return subprocess.Popen(
                [sys.executable, "-m", "durablehub", "worker", "tests.reliability.poison_apps:app"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "AzureWebJobsStorage": self._settings.connection_string.get_secret_value(),
                    "DURABLEHUB_TASK_HUB": self._settings.task_hub,
                    "DURABLEHUB_PARTITION_COUNT": str(self._settings.partition_count),
                    "DURABLEHUB_MAX_DEQUEUE_COUNT": "1",
                    "DURABLEHUB_ACTIVITY_VISIBILITY_SECONDS": "5",
                    "DURABLEHUB_CONTROL_VISIBILITY_SECONDS": "5",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            code = self._process.poll()
            if code is None:
                continue
            assert code == CRASH_EXIT_CODE, f"worker exited with {code}:\n{self.logs()}"
            self.crashes += 1
            self._process = self._start()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self._log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._process.terminate()
        self._process.wait(timeout=30)


def invoke(settings: TaskHubSettings, *args: str, code: int = 0) -> Result:
    env = {
        "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
        "DURABLEHUB_TASK_HUB": settings.task_hub,
    }
    result = cli.invoke(cli_app, ["poison", *args], env=env)
    assert result.exit_code == code, result.output
    return result


def poison_cli(settings: TaskHubSettings, *args: str, code: int = 0) -> str:
    return invoke(settings, *args, code=code).output


def poison_list(settings: TaskHubSettings) -> list[dict[str, Any]]:
    """``poison list --json``, parsed from its stdout alone (notes go to stderr)."""
    return json.loads(invoke(settings, "list", "--json").stdout)  # type: ignore[no-any-return]


def test_an_activity_that_crashes_its_worker_fails_its_task_after_max_dequeues(
    settings: TaskHubSettings, hub: TaskHub, tmp_path: Path
) -> None:
    marker = tmp_path / "crash"
    marker.touch()
    workers = Supervisor(settings, tmp_path)
    try:
        with DurableClient(settings) as client:
            iid = client.schedule_new_orchestration("calls_crashing_activity", input=str(marker))
            state = client.wait_for_orchestration_completion(iid, timeout=120)
            # Run in memory by the worker that scheduled it (not a dequeue), then dequeued once:
            # two crashes; the second dequeue exceeds max_dequeue_count=1.
            assert workers.crashes == 2, workers.logs()
            assert state.runtime_status == dh.OrchestrationStatus.FAILED, workers.logs()
            failure = state.failure_details
            assert failure is not None and failure.inner_failure is not None
            cause = failure.inner_failure  # the orchestrator let the TaskFailedError through
            assert cause.error_type == "durablehub.errors.PoisonMessageError", failure
            assert f"activity 'crash_unless_fixed' (task 0) of instance {iid!r} was dequeued 2 times" in (
                cause.message
            )
            assert f"moved to {settings.names.poison_queue}" in cause.message
            logs = workers.logs()
            assert "ERROR durablehub.taskhub: poison message: moving message " in logs
            line = next(x for x in logs.splitlines() if "poison message: moving" in x)
            assert f"(instance {iid!r}, TaskScheduled) from {settings.names.work_item_queue} to " in line
            assert "after 2 dequeues: dequeued 2 times without completing (max_dequeue_count=1)" in line

            [entry] = poison_list(settings)
            assert entry["instanceId"] == iid and entry["eventType"] == "TaskScheduled"
            assert entry["originalQueue"] == settings.names.work_item_queue and entry["dequeueCount"] == 2
            assert entry["instanceWasTold"] is True
            # Requeueing would run the activity for an instance that has moved on: refused, with
            # the way out; the message stays.
            out = poison_cli(settings, "requeue", entry["messageId"], code=1)
            assert f"fix the cause and rewind the instance (durablehub rewind {iid})" in out
            assert len(poison_list(settings)) == 1

            marker.unlink()  # the fix
            client.rewind_orchestration(iid, reason="fixed")
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED, workers.logs()
            assert state.get_output() == "activity ran"
    finally:
        workers.stop()


def test_an_orchestration_message_that_crashes_its_worker_waits_in_poison_until_requeued(
    settings: TaskHubSettings, hub: TaskHub, tmp_path: Path
) -> None:
    marker = tmp_path / "crash"
    marker.touch()
    workers = Supervisor(settings, tmp_path)
    try:
        with DurableClient(settings) as client:
            iid = client.schedule_new_orchestration("crashes_until_fixed", input=str(marker))
            deadline = time.monotonic() + 90
            entries: list[dict] = []
            while not entries:
                assert time.monotonic() < deadline, workers.logs()
                time.sleep(0.5)
                entries = poison_list(settings)
            [entry] = entries
            assert workers.crashes == 1  # the first dequeue crashed; the second went to poison
            assert entry["instanceId"] == iid and entry["eventType"] == "ExecutionStarted"
            assert entry["originalQueue"] == hub.control_queue_for(iid).name
            assert entry["dequeueCount"] == 2 and entry["instanceWasTold"] is False
            assert "dequeued 2 times without being completed (max_dequeue_count=1)" in entry["reason"]
            table = poison_cli(settings, "list")
            assert entry["messageId"] in table and "ExecutionStarted" in table
            # Left as it was, waiting (failing it would make the message useless).
            state = client.get_orchestration_state(iid)
            assert state is not None and state.runtime_status == dh.OrchestrationStatus.PENDING

            marker.unlink()  # the fix
            out = poison_cli(settings, "requeue", entry["messageId"])
            assert out.strip() == f"requeued {entry['messageId']} to {entry['originalQueue']}"
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED, workers.logs()
            assert state.get_output() == "orchestration ran"
            assert poison_list(settings) == []
            assert workers.crashes == 1
    finally:
        workers.stop()


def _envelope(instance_id: str, event: ev.HistoryEvent) -> dict:
    return envelope.to_json(
        envelope.MessageData(
            task_message=envelope.TaskMessage(
                event=event, orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id)
            )
        )
    )


def _bad_bodies(instance_id: str) -> dict[str, str]:
    """Bodies no worker can process, each with a word its poison reason must contain."""
    raised = _envelope(instance_id, ev.EventRaised(name="x", input="1"))
    unknown_event = json.loads(json.dumps(raised))
    unknown_event["TaskMessage"]["Event"].pop("$type")
    unknown_event["TaskMessage"]["Event"]["EventType"] = 99
    no_instance = json.loads(json.dumps(raised))
    del no_instance["TaskMessage"]["OrchestrationInstance"]["InstanceId"]
    empty_instance = json.loads(json.dumps(raised))
    empty_instance["TaskMessage"]["OrchestrationInstance"]["InstanceId"] = ""
    bad_field = json.loads(json.dumps(raised))
    bad_field["TaskMessage"]["Event"]["EventId"] = "not a number"
    history_only = _envelope(instance_id, ev.TaskScheduled(event_id=0, name="echo", input="1"))
    return {
        "this is not a durable task message": "neither JSON nor Base64",
        "aGVsbG8gd29ybGQ=": "not valid JSON",  # Base64 of plain text
        '{"hello": "world"}': "neither a TaskMessage nor a CompressedBlobName",
        "[1, 2, 3]": "not a JSON object",
        json.dumps({"$type": "Contoso.Order", "Id": 1}): "'Contoso.Order', not a",
        json.dumps(unknown_event): "unknown EventType 99",
        json.dumps(no_instance): "without InstanceId",
        json.dumps(empty_instance): "has no InstanceId",
        json.dumps(bad_field): "malformed field (ValueError",
        json.dumps(history_only): "a TaskScheduled event is never sent to a control queue",
    }


def test_malformed_and_foreign_messages_go_to_poison_and_the_partition_keeps_working(
    settings: TaskHubSettings, hub: TaskHub, caplog: pytest.LogCaptureFixture
) -> None:
    # Instances that share one partition with the bad messages.
    ids = [f"neighbour-{n}" for n in range(40)]
    ids = [i for i in ids if partition_index(i, settings.partition_count) == 1][:3]
    control = hub.control_queues[1]
    bad_control = _bad_bodies(ids[0])
    for body in bad_control:
        control.send_raw(body)
    bad_work_items = {
        "garbage": "neither JSON nor Base64",
        json.dumps(_envelope(ids[0], ev.EventRaised(name="x", input="1"))): "not a TaskScheduled",
        json.dumps(
            _envelope(ids[0], ev.TaskScheduled(event_id=0, name="", input="1"))
        ): "without an activity",
    }
    for body in bad_work_items:
        hub.work_items.send_raw(body)

    caplog.set_level(logging.ERROR, logger="durablehub.taskhub")
    with dh.Worker(runtime_app, settings), DurableClient(settings, hub=hub) as client:
        for iid in ids:
            client.schedule_new_orchestration("chain", input=3, instance_id=iid)
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 3
        deadline = time.monotonic() + 30
        while len(entries := hub.poison.entries(hold=timedelta(seconds=10))) < len(bad_control) + len(
            bad_work_items
        ):
            hub.poison.release(entries)
            assert time.monotonic() < deadline, [e.record.reason for e in entries]
            time.sleep(0.5)
        hub.poison.release(entries)

    by_body = {e.record.body: e.record for e in entries}
    assert set(by_body) == {*bad_control, *bad_work_items}  # each once, verbatim
    for bodies, queue in [(bad_control, control.name), (bad_work_items, hub.names.work_item_queue)]:
        for body, why in bodies.items():
            record = by_body[body]
            assert why in record.reason, (body, record.reason)
            assert record.original_queue == queue and record.dequeue_count == 1
    assert control.approximate_count() == 0 and hub.work_items.approximate_count() == 0
    moved = [r.getMessage() for r in caplog.records if "poison message: moving" in r.getMessage()]
    assert len(moved) == len(bad_control) + len(bad_work_items)
    assert any(f"(instance {ids[0]!r}, TaskScheduled) from {control.name}" in m for m in moved)


def test_messages_handed_back_on_purpose_do_not_count_towards_the_threshold(
    settings: TaskHubSettings, hub: TaskHub, caplog: pytest.LogCaptureFixture
) -> None:
    # A response whose scheduling event never comes is handed back (deliberately) until
    # max_early_message_dequeues, then discarded -- not poisoned at max_dequeue_count.
    options = WorkerOptions(max_dequeue_count=1, max_early_message_dequeues=3)
    caplog.set_level(logging.WARNING, logger="durablehub")
    with dh.Worker(e2e_app, settings, options=options), DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("status_reporter", instance_id="waits-for-go")
        client.wait_for_orchestration_start(iid, timeout=30)
        stray = envelope.MessageData(
            task_message=envelope.TaskMessage(
                event=ev.TaskCompleted(task_scheduled_id=99, result="1"),
                orchestration_instance=ev.OrchestrationInstance(instance_id=iid),
            )
        )
        sent = hub.control_queue_for(iid).send(stray)
        deadline = time.monotonic() + 30
        while not any(f"discarding message {sent.message_id}" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.2)
        client.raise_orchestration_event(iid, "go", data=5)
        state = client.wait_for_orchestration_completion(iid, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 5
    assert "after 3 dequeues" in next(
        r.getMessage() for r in caplog.records if sent.message_id in r.getMessage()
    )
    assert not hub.poison.exists()
