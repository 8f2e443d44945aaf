"""Trace context in the task hub as DurableTask.Core stores it: ``ParentTraceContext`` JSON
(``DistributedTraceContext``'s members) in History columns and queue messages, ``ClientSpanId``
and ``GenerateNewTrace``; and a hub written without them still replays."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient
from opentelemetry import trace

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.engine.actions import CreateSubOrchestration, ScheduleTask, SendEvent
from durablehub.engine.episode import plan_episode
from durablehub.engine.replay import EpisodeResult
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from tests.telemetry import spantree as st
from tests.telemetry.trace_apps import app

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]$")
MEMBERS = ["TraceParent", "TraceState", "Id", "SpanId", "ActivityStartTime"]


def _started(context: dict | None) -> ev.ExecutionStarted:
    return ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="i", execution_id="e1"),
        name="o",
        parent_trace_context=context,
    )


def test_messages_of_an_episode_carry_the_context_in_dtfx_shape() -> None:
    started = _started(
        {
            "TraceParent": f"00-{TRACE}-b7ad6b7169203331-01",
            "TraceState": "congo=t61rcWkgMzE",
            "Id": f"00-{TRACE}-1111111111111111-01",
            "SpanId": "1111111111111111",
            "ActivityStartTime": "2026-11-30T00:00:00.0000000+00:00",
        }
    )
    result = EpisodeResult(
        actions=(
            ScheduleTask(id=0, name="a", input=None),
            CreateSubOrchestration(id=1, name="child", instance_id="c", input=None),
            SendEvent(id=2, instance_id="other", name="hello", data=None),
        ),
        custom_status=None,
        is_complete=False,
        is_suspended=False,
    )
    plan = plan_episode(result, started=started, now=datetime.now(UTC))
    by_type = {type(m.event).__name__: json.loads(envelope.encode(_message(m))) for m in plan.messages}

    task = by_type["TaskScheduled"]["TaskMessage"]["Event"]["ParentTraceContext"]
    assert list(task) == ["$type", *MEMBERS]
    assert task["$type"] == "DurableTask.Core.Tracing.DistributedTraceContext"
    m = TRACEPARENT.match(task["TraceParent"])
    assert m and m.group(1) == TRACE and m.group(2) != "1111111111111111"  # a client span of its own
    assert task["TraceState"] == "congo=t61rcWkgMzE" and task["SpanId"] is None

    child = by_type["ExecutionStarted"]["TaskMessage"]["Event"]
    created = next(e for e in plan.history if isinstance(e, ev.SubOrchestrationInstanceCreated))
    assert child["ParentTraceContext"]["TraceParent"] == f"00-{TRACE}-{created.client_span_id}-01"
    assert child["GenerateNewTrace"] is False

    raised = by_type["EventRaised"]["TaskMessage"]["Event"]["ParentTraceContext"]
    assert raised["TraceParent"] == f"00-{TRACE}-1111111111111111-01"  # the orchestration span

    # Without a context (a hub or client without tracing), no context.
    untraced = plan_episode(result, started=_started(None), now=datetime.now(UTC))
    assert all(getattr(m.event, "parent_trace_context", None) is None for m in untraced.messages)


def _message(m) -> envelope.MessageData:
    oi = ev.OrchestrationInstance(instance_id=m.target_instance_id, execution_id=m.target_execution_id)
    return envelope.MessageData(task_message=envelope.TaskMessage(event=m.event, orchestration_instance=oi))


@pytest.mark.azurite
def test_history_rows_and_queue_messages(settings: TaskHubSettings, hub: TaskHub, spans) -> None:
    tracer = trace.get_tracer("tests")
    with DurableClient(settings, hub=hub) as client:
        with tracer.start_as_current_span("caller") as caller:
            iid = client.schedule_new_orchestration("looping", input=2, instance_id="stored")
        # No worker yet: the start message waits in its control queue, as the client wrote it.
        queue = QueueClient.from_connection_string(
            settings.connection_string.get_secret_value(), hub.control_queue_for(iid).name
        )
        with queue:
            [body] = [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]
        event = body["TaskMessage"]["Event"]
        create = st.one(st.from_sdk(spans.get_finished_spans()), "create_orchestration:looping")
        assert create.parent_id == f"{caller.get_span_context().span_id:016x}"
        assert event["ParentTraceContext"]["TraceParent"].startswith(
            f"00-{create.trace_id}-{create.span_id}-"
        )
        assert event["ParentTraceContext"]["SpanId"] is None  # the worker's first episode sets it
        assert event["GenerateNewTrace"] is False

        with dh.Worker(app, settings):
            client.wait_for_orchestration_completion(iid, timeout=60)
    rows = {r["RowKey"]: r for r in hub.history.list_rows(iid)}
    started = next(r for r in rows.values() if r.get("EventType") == "ExecutionStarted")
    context = json.loads(started["ParentTraceContext"])  # a JSON string column, no $type
    assert list(context) == MEMBERS
    assert context["TraceParent"].startswith(f"00-{create.trace_id}-{create.span_id}-")
    assert context["Id"] == f"00-{create.trace_id}-{context['SpanId']}-{context['TraceParent'][-2:]}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", context["ActivityStartTime"])
    assert started["GenerateNewTrace"] is False
    scheduled = next(r for r in rows.values() if r.get("EventType") == "TaskScheduled")
    task_context = json.loads(scheduled["ParentTraceContext"])
    assert list(task_context) == MEMBERS
    client_span = TRACEPARENT.match(task_context["TraceParent"])
    assert client_span and client_span.group(1) == create.trace_id
    # The orchestration span, exported once, has the id the history recorded.
    found = st.ours(st.from_sdk(spans.get_finished_spans()), create.trace_id)
    assert st.one(found, "orchestration:looping", "SERVER").span_id == context["SpanId"]


@pytest.mark.azurite
def test_a_hub_written_without_trace_context_still_replays(
    settings: TaskHubSettings, hub: TaskHub, spans, tmp_path: Path
) -> None:
    """History rows as a hub written before tracing holds them (no ParentTraceContext,
    GenerateNewTrace or ClientSpanId column): the instance goes on, and emits no span."""
    with DurableClient(settings, hub=hub) as client:
        with trace.get_tracer("tests").start_as_current_span("caller"):
            iid = client.schedule_new_orchestration(
                "order_workflow", input={"id": 1, "flaky_path": str(tmp_path / "flaky")}
            )
        with dh.Worker(app, settings):
            _wait_for_event_wait(client, iid)
        table = TableClient.from_connection_string(
            settings.connection_string.get_secret_value(), hub.history.table_name
        )
        with table:
            for row in hub.history.list_rows(iid):
                old = {
                    k: v
                    for k, v in row.items()
                    if k not in ("ParentTraceContext", "GenerateNewTrace", "ClientSpanId")
                }
                table.update_entity(old, mode=UpdateMode.REPLACE)
        assert not any("ParentTraceContext" in r for r in hub.history.list_rows(iid))
        spans.clear()
        with dh.Worker(app, settings):
            client.raise_orchestration_event(iid, "Approval", data=True)
            state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state
    names = {s.name for s in st.from_sdk(spans.get_finished_spans())}
    assert "orchestration:order_workflow" not in names  # no context stored: nothing to end
    assert "activity:ship" not in names


def _wait_for_event_wait(client: DurableClient, iid: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        history = client.get_orchestration_history(iid)
        if any(isinstance(e, ev.TimerFired) for e in history) and not any(
            isinstance(e, ev.EventRaised) for e in history
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the instance did not reach its wait for Approval")
