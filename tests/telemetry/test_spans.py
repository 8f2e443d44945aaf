"""Spans of a workflow run by an in-process worker: one trace with DurableTask.Core's names,
kinds, parents and attributes, nothing for replayed work."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.telemetry import spantree as st
from tests.telemetry.trace_apps import app

pytestmark = pytest.mark.azurite


def test_order_workflow_is_one_trace(settings: TaskHubSettings, hub: TaskHub, spans, tmp_path: Path) -> None:
    tracer = trace.get_tracer("tests")
    order = {"id": 42, "flaky_path": str(tmp_path / "flaky.txt")}
    with dh.Worker(app, settings), DurableClient(settings, hub=hub) as client:
        with tracer.start_as_current_span("http request") as request:
            iid = client.schedule_new_orchestration("order_workflow", input=order, instance_id="order-42")
        client.wait_for_orchestration_start(iid, timeout=30)
        client.raise_orchestration_event(iid, "Approval", data=True)
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state
    trace_id = f"{request.get_span_context().trace_id:032x}"
    found = st.ours(st.from_sdk(spans.get_finished_spans()), trace_id)
    st.no_duplicates(found)
    assert st.is_one_tree(found).name == "http request"

    create = st.one(found, "create_orchestration:order_workflow", "PRODUCER")
    assert st.parent(found, create).name == "http request"
    assert create.attributes["durabletask.type"] == "orchestration"
    assert create.attributes["durabletask.task.instance_id"] == "order-42"
    assert len(create.attributes["durabletask.task.execution_id"]) == 32

    root = st.one(found, "orchestration:order_workflow", "SERVER")
    assert root.parent_id == create.span_id
    assert root.status == "OK"
    assert root.attributes["durabletask.task.status"] == "Completed"
    assert root.attributes["durabletask.task.instance_id"] == "order-42"

    # The sub-orchestration: a client span under the parent, the child's server span under it.
    sub_client = st.one(found, "orchestration:payment", "CLIENT")
    assert sub_client.parent_id == root.span_id
    sub = st.one(found, "orchestration:payment", "SERVER")
    assert sub.parent_id == sub_client.span_id
    assert sub.attributes["durabletask.task.instance_id"] == "order-42-payment"

    # The flaky activity: two attempts, each a client span (the first failed) with its server span.
    flaky_clients = st.by_name([s for s in found if s.kind == "CLIENT"], "activity:flaky")
    assert sorted(s.status for s in flaky_clients) == ["ERROR", "UNSET"]
    for client_span in flaky_clients:
        assert client_span.parent_id == sub.span_id
        server = [s for s in found if s.kind == "SERVER" and s.parent_id == client_span.span_id]
        assert [s.name for s in server] == ["activity:flaky"]
        assert server[0].status == client_span.status
        assert (
            server[0].attributes["durabletask.task.task_id"]
            == client_span.attributes["durabletask.task.task_id"]
        )
    # The retry waited on a timer of the sub-orchestration.
    assert [s.parent_id for s in st.by_name(found, "orchestration:payment:timer")] == [sub.span_id]

    # Activities' server spans are current while their code runs, sync (thread) or async.
    charge = st.one(found, "activity:charge", "SERVER")
    assert state.serialized_output is not None
    assert f"in span {charge.span_id}" in state.serialized_output
    ship = st.one(found, "activity:ship", "SERVER")
    assert f"in span {ship.span_id}" in state.serialized_output
    assert st.parent(found, ship).parent_id == root.span_id
    assert ship.attributes["durabletask.task.name"] == "ship"
    assert ship.attributes["durabletask.type"] == "activity"
    assert ship.attributes["durabletask.task.instance_id"] == "order-42"

    timer = st.one(found, "orchestration:order_workflow:timer", "INTERNAL")
    assert timer.parent_id == root.span_id
    assert "durabletask.fire_at" in timer.attributes
    entity = st.one(found, "entity:counter:add", "SERVER")
    assert entity.parent_id == st.one(found, "entity:counter:add", "CLIENT").span_id
    assert st.parent(found, entity).parent_id == root.span_id
    assert entity.attributes["durabletask.task.operation"] == "call_entity"
    assert entity.attributes["durabletask.task.instance_id"] == "@counter@orders"
    assert entity.attributes["durabletask.type"] == "entity"

    # Raised outside the request: a trace of its own (DTFx's client span).
    event = st.one(st.from_sdk(spans.get_finished_spans()), "orchestration_event:Approval", "PRODUCER")
    assert event.attributes["durabletask.event.target_instance_id"] == "order-42"
    assert event.attributes["durabletask.type"] == "event"


def test_continue_as_new_is_one_orchestration_span(settings: TaskHubSettings, hub: TaskHub, spans) -> None:
    with dh.Worker(app, settings), DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("looping", input=0)
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED
    found = st.from_sdk(spans.get_finished_spans())
    create = st.one(found, "create_orchestration:looping")
    found = st.ours(found, create.trace_id)
    st.no_duplicates(found)
    assert st.is_one_tree(found) == create
    root = st.one(found, "orchestration:looping", "SERVER")
    clients = st.by_name([s for s in found if s.kind == "CLIENT"], "activity:charge")
    assert len(clients) == 3 and {s.parent_id for s in clients} == {root.span_id}
    assert root.start_ns <= min(s.start_ns for s in clients)
