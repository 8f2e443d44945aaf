"""Tracking logs (``durablehub.tracking``): Durable Functions' events, in order, with their
fields, for a small order workflow on a real worker; replay events and payloads only when
asked for."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from durablehub.client import DurableClient
from durablehub.models import OrchestrationStatus
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.telemetry.tracking import PAYLOADS_SETTING, REPLAY_SETTING
from durablehub.worker import Worker
from tests.telemetry.apps import app
from tests.telemetry.tracking_records import Records

pytestmark = pytest.mark.azurite

SECRET = "card-4242"
FIELDS = {"instanceId", "executionId", "functionName", "functionType", "state", "isReplay", "hubName"}
FIELDS |= {"sequenceNumber", "event"}


def _events(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["event"], r["functionName"]) for r in records]


def _order(client: DurableClient, tracked: Records, approved: bool) -> str:
    iid = client.schedule_new_orchestration(
        "ProcessOrder", input={"id": "o-1", "card": SECRET, "approval": True}
    )
    # The event is raised once the orchestrator listens: raised earlier, it would be buffered
    # and the instance would never log FunctionListening.
    tracked.wait_for(lambda: any(r["event"] == "FunctionListening" for r in tracked.of(iid)), "listening")
    client.raise_orchestration_event(
        iid, "Approval", data={"approved": approved, "note": SECRET} if approved else None
    )
    client.wait_for_orchestration_completion(iid, timeout=60)
    return iid


def test_tracking_events_of_an_order_in_order(
    settings: TaskHubSettings, hub: TaskHub, tracked: Records
) -> None:
    with (
        Worker(app, settings, options=WorkerOptions(max_poll_interval_seconds=0.2)),
        DurableClient(settings, hub=hub) as client,
    ):
        iid = _order(client, tracked, approved=True)
        failed = _order(client, tracked, approved=False)
        stopped = client.schedule_new_orchestration("ProcessOrder", input={"id": "o-3", "approval": True})
        tracked.wait_for(
            lambda: any(r["event"] == "FunctionListening" for r in tracked.of(stopped)), "listening"
        )
        client.terminate_orchestration(stopped, output="customer called")
        client.wait_for_orchestration_completion(stopped, timeout=60)
        client.signal_entity("@Counter@c1", "add", 5)
        client.signal_entity("@Counter@c1", "add", 500)  # fails: too much
        tracked.wait_for(
            lambda: any(r["event"] == "OperationFailed" for r in tracked.of("@counter@c1")), "failure"
        )
        assert client.get_orchestration_state(iid).runtime_status is OrchestrationStatus.COMPLETED

    records = tracked.of(iid)
    assert _events(records) == [
        ("FunctionStarting", "ProcessOrder"),
        ("FunctionScheduled", "ProcessPayment"),
        ("FunctionAwaited", "ProcessOrder"),
        ("FunctionStarting", "ProcessPayment"),
        ("FunctionCompleted", "ProcessPayment"),
        ("FunctionAwaited", "ProcessOrder"),  # the timer
        ("TimerExpired", "ProcessOrder"),
        ("FunctionListening", "ProcessOrder"),
        ("FunctionAwaited", "ProcessOrder"),
        ("ExternalEventRaised", "ProcessOrder"),
        ("FunctionCompleted", "ProcessOrder"),
    ]
    assert all(FIELDS <= r.keys() for r in records)
    assert {r["hubName"] for r in records} == {settings.task_hub}
    assert not any(r["isReplay"] for r in records)  # replay events are off by default
    assert len({r["executionId"] for r in records}) == 1 and records[0]["executionId"]
    numbers = [r["sequenceNumber"] for r in records]
    assert numbers == sorted(numbers)
    by_event = {r["event"]: r for r in records}  # the last of each
    assert [r["functionType"] for r in records[:4]] == [
        "Orchestrator",
        "Activity",
        "Orchestrator",
        "Activity",
    ]
    assert records[1]["reason"] == "ProcessOrder" and records[1]["taskEventId"] == 0
    assert records[3]["taskEventId"] == 0 and records[4]["duration"] >= 0
    assert by_event["FunctionListening"]["reason"] == "WaitForExternalEvent:Approval"
    assert by_event["ExternalEventRaised"]["eventName"] == "Approval"
    assert (
        by_event["FunctionCompleted"]["duration"] > 0 and not by_event["FunctionCompleted"]["continuedAsNew"]
    )
    assert by_event["TimerExpired"]["expirationTime"]
    # Payloads are redacted: their length only.
    assert records[0]["input"].startswith("(Redacted ") and SECRET not in repr(tracked.records)
    assert by_event["FunctionCompleted"]["output"] == "(Redacted 17 characters)"  # '"receipt for o-1"'

    failures = [r for r in tracked.of(failed) if r["event"] == "FunctionFailed"]
    assert [(r["functionName"], r["functionType"]) for r in failures] == [
        ("ShipOrder", "Activity"),
        ("ProcessOrder", "Orchestrator"),
    ]
    # A failure carries its type and message, as the extension's FunctionFailed does.
    assert failures[0]["errorType"] == "builtins.ValueError"
    assert failures[0]["reason"] == "builtins.ValueError: no address for o-1"
    assert failures[0]["levelno"] == logging.ERROR
    assert failures[1]["errorType"] == "durablehub.errors.TaskFailedError"

    (terminated,) = [r for r in tracked.of(stopped) if r["event"] == "FunctionTerminated"]
    assert terminated["reason"] == "(Redacted 17 characters)" and terminated["runtimeStatus"] == "Terminated"
    assert terminated["levelno"] == logging.WARNING

    operations = tracked.of("@counter@c1")
    assert [(r["event"], r["operationName"], r["functionType"]) for r in operations] == [
        ("OperationCompleted", "add", "Entity"),
        ("OperationFailed", "add", "Entity"),
    ]
    assert operations[1]["errorType"] == "builtins.ValueError" and operations[0]["functionName"] == "counter"


def test_replay_events_and_payloads_when_enabled(
    settings: TaskHubSettings, hub: TaskHub, tracked: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REPLAY_SETTING, "true")
    monkeypatch.setenv(PAYLOADS_SETTING, "true")
    with (
        Worker(app, settings, options=WorkerOptions(max_poll_interval_seconds=0.2)),
        DurableClient(settings, hub=hub) as client,
    ):
        iid = _order(client, tracked, approved=True)
    records = tracked.of(iid)
    replayed = [(r["event"], r["functionName"]) for r in records if r["isReplay"]]
    # Each later episode replays the start and what came before it.
    assert replayed.count(("FunctionStarting", "ProcessOrder")) == 3
    assert replayed.count(("FunctionScheduled", "ProcessPayment")) == 3
    assert ("TimerExpired", "ProcessOrder") in replayed
    live = [r for r in records if not r["isReplay"]]
    assert [r["event"] for r in live][0] == "FunctionStarting" and SECRET in live[0]["input"]
    assert [r for r in live if r["event"] == "ExternalEventRaised"][0][
        "input"
    ] == '{"approved":true,"note":"card-4242"}'
    assert live[-1]["output"] == '"receipt for o-1"'
