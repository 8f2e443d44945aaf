"""``ctx.continue_as_new(..., new_trace=True)``: the next generation starts a trace of its own
(DurableTask.Core's ``ContinueAsNewTraceBehavior.StartNewTrace``, written as the
``GenerateNewTrace`` column of its ``ExecutionStarted``); without it the generations share one
orchestration span (``test_spans.test_continue_as_new_is_one_orchestration_span``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from opentelemetry import trace

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration
from durablehub.engine.episode import plan_episode
from durablehub.engine.replay import EpisodeResult, OrchestrationExecutor
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.testing import history as h
from tests.telemetry import spantree as st
from tests.telemetry.trace_apps import app

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _next_start(new_trace: bool) -> dict:
    started = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="i", execution_id="e1"),
        name="o",
        parent_trace_context={
            "TraceParent": f"00-{TRACE}-b7ad6b7169203331-01",
            "TraceState": None,
            "Id": f"00-{TRACE}-1111111111111111-01",
            "SpanId": "1111111111111111",
            "ActivityStartTime": "2026-11-30T00:00:00.0000000+00:00",
        },
    )
    done = CompleteOrchestration(
        id=0, status=OrchestrationStatus.CONTINUED_AS_NEW, new_input="1", new_trace=new_trace
    )
    result = EpisodeResult(actions=(done,), custom_status=None, is_complete=True, is_suspended=False)
    plan = plan_episode(result, started=started, now=datetime.now(UTC))
    [start] = plan.next_generation
    oi = ev.OrchestrationInstance(instance_id="i", execution_id=start.target_execution_id)
    message = envelope.MessageData(
        task_message=envelope.TaskMessage(event=start.event, orchestration_instance=oi)
    )
    return json.loads(envelope.encode(message))["TaskMessage"]["Event"]


def test_the_next_generation_message_asks_for_a_new_trace() -> None:
    fresh = _next_start(new_trace=True)
    assert fresh["GenerateNewTrace"] is True
    assert fresh["ParentTraceContext"] is None  # DTFx copies the context only to stay in the trace
    kept = _next_start(new_trace=False)
    assert kept["GenerateNewTrace"] is False
    assert kept["ParentTraceContext"]["SpanId"] == "1111111111111111"


def test_the_orchestrator_asks_for_it_and_a_wrong_value_is_refused() -> None:
    def orch(ctx: dh.OrchestrationContext, new_trace: object):
        ctx.continue_as_new(1, new_trace=new_trace)  # type: ignore[arg-type]
        yield from ()

    def run(value: object) -> CompleteOrchestration | None:
        start = h.started("Orch", value)
        return OrchestrationExecutor(orch).execute([], [h.orchestrator_started(), start]).completion

    asked = run(True)
    assert asked is not None and asked.status is OrchestrationStatus.CONTINUED_AS_NEW and asked.new_trace
    default = run(False)
    assert default is not None and default.new_trace is False
    refused = run("yes")
    assert refused is not None and refused.status is OrchestrationStatus.FAILED
    assert refused.failure_details is not None
    assert refused.failure_details.message == "new_trace must be a bool, got str"


@pytest.mark.azurite
def test_the_next_generation_is_a_new_trace(settings: TaskHubSettings, hub: TaskHub, spans) -> None:
    tracer = trace.get_tracer("tests")
    with dh.Worker(app, settings), DurableClient(settings, hub=hub) as client:
        with tracer.start_as_current_span("request") as request:
            iid = client.schedule_new_orchestration("periodic", input=0)
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state
        history = client.get_orchestration_history(iid)
    found = st.from_sdk(spans.get_finished_spans())
    st.no_duplicates(found)
    first_trace = f"{request.get_span_context().trace_id:032x}"

    # The first generation: its own trace, its orchestration span ended by the continue-as-new.
    first = st.ours(found, first_trace)
    assert st.is_one_tree(first).name == "request"
    root = st.one(first, "orchestration:periodic", "SERVER")
    assert st.parent(first, root).name == "create_orchestration:periodic"
    assert root.attributes["durabletask.task.status"] == "ContinuedAsNew"
    assert root.status == "OK"
    assert [s.parent_id for s in st.by_name(first, "activity:charge") if s.kind == "CLIENT"] == [root.span_id]

    # The second: a trace of its own, from a create_orchestration span with no parent.
    second_roots = [s for s in st.by_name(found, "orchestration:periodic") if s.trace_id != first_trace]
    assert len(second_roots) == 1
    second = st.ours(found, second_roots[0].trace_id)
    create = st.is_one_tree(second)
    assert create.name == "create_orchestration:periodic" and create.parent_id is None
    assert create.kind == "PRODUCER"
    assert second_roots[0].parent_id == create.span_id
    assert second_roots[0].attributes["durabletask.task.status"] == "Completed"
    assert [s.parent_id for s in st.by_name(second, "activity:charge") if s.kind == "CLIENT"] == [
        second_roots[0].span_id
    ]
    # Its history: the new trace recorded, the request consumed (GenerateNewTrace false).
    started = history[0] if isinstance(history[0], ev.ExecutionStarted) else history[1]
    assert isinstance(started, ev.ExecutionStarted)
    assert started.generate_new_trace is False
    assert started.parent_trace_context is not None
    assert started.parent_trace_context["SpanId"] == second_roots[0].span_id
