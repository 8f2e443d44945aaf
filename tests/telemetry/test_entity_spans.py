"""Entity spans on the calling side, as DurableTask.Core emits them: an orchestration's
``call_entity`` is a client span and its ``signal_entity`` a producer span
``entity:{name}:{operation}`` under the orchestration span, a client's ``signal_entity`` a
producer span under the caller's; the request message carries its context
(``parentTraceContext``), so the entity's server or consumer span is its child. Each is
exported once, although the orchestration replays the calls and a response may come twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.storage.queue import QueueClient
from opentelemetry import trace

import durablehub as dh
from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.engine.actions import SendEvent
from durablehub.engine.episode import plan_episode
from durablehub.engine.replay import EpisodeResult
from durablehub.entities.messages import RequestMessage, ResponseMessage
from durablehub.http import HttpSettings, create_app
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.telemetry import tracing
from tests.telemetry import spantree as st
from tests.telemetry.trace_apps import app

TRACE = "0af7651916cd43dd8448eb211c80319c"
OWN = "1111111111111111"
MEMBERS = ["TraceParent", "TraceState", "Id", "SpanId", "ActivityStartTime"]
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def _started() -> ev.ExecutionStarted:
    return ev.ExecutionStarted(
        timestamp=NOW,
        orchestration_instance=ev.OrchestrationInstance(instance_id="caller", execution_id="e1"),
        name="caller",
        parent_trace_context={
            "TraceParent": f"00-{TRACE}-b7ad6b7169203331-01",
            "TraceState": None,
            "Id": f"00-{TRACE}-{OWN}-01",
            "SpanId": OWN,
            "ActivityStartTime": "2026-11-30T04:00:00.0000000+00:00",
        },
    )


def _request(request_id: str, *, signal: bool, operation: str = "add") -> str:
    return RequestMessage(
        id=request_id, operation=operation, input="1", is_signal=signal, parent_instance_id="caller"
    ).to_json()


def test_a_request_message_carries_its_client_span_in_dtfx_shape() -> None:
    result = EpisodeResult(
        actions=(
            SendEvent(id=0, instance_id="@counter@k", name="op", data=_request("r-call", signal=False)),
            SendEvent(id=1, instance_id="@counter@k", name="op", data=_request("r-signal", signal=True)),
        ),
        custom_status=None,
        is_complete=False,
        is_suspended=False,
    )
    plan = plan_episode(result, started=_started(), now=NOW)
    sent = [e for e in plan.history if isinstance(e, ev.EventSent)]
    raised = [m.event for m in plan.messages]
    spans = set()
    for event_sent, message in zip(sent, raised, strict=True):
        assert isinstance(message, ev.EventRaised)
        assert message.input == event_sent.input  # history keeps what was sent
        data = json.loads(message.input or "")
        context = data["parentTraceContext"]
        assert list(context) == MEMBERS
        _, trace_id, span_id, flags = context["TraceParent"].split("-")
        assert (trace_id, flags) == (TRACE, "01") and span_id != OWN
        spans.add(span_id)
        assert RequestMessage.from_json(message.input).parent_trace_context == context
    assert len(spans) == 2  # a client span each
    # The same episode planned again (a crash, another worker) sends the same context.
    again = plan_episode(result, started=_started(), now=NOW + timedelta(seconds=5))
    assert [m.event.input for m in again.messages] == [m.input for m in raised]  # type: ignore[attr-defined]


def test_request_messages_without_a_context_still_read() -> None:
    old = json.dumps(  # as written before request spans (and by DTFx without a trace)
        {
            "op": "add",
            "signal": True,
            "input": "1",
            "id": "r1",
            "Timestamp": "0001-01-01T00:00:00.0000000Z",
            "Predecessor": "0001-01-01T00:00:00.0000000Z",
            "IsLockRequest": False,
            "createTrace": False,
        }
    )
    request = RequestMessage.from_json(old)
    assert request.parent_trace_context is None and request.operation == "add"
    assert "parentTraceContext" not in json.loads(request.to_json())


def test_a_call_answered_twice_has_one_client_span(spans) -> None:
    started = _started()
    result = EpisodeResult(
        actions=(
            SendEvent(id=0, instance_id="@counter@k", name="op", data=_request("r-call", signal=False)),
        ),
        custom_status=None,
        is_complete=False,
        is_suspended=False,
    )
    plan = plan_episode(result, started=started, now=NOW)
    past: list[ev.HistoryEvent] = [started, *plan.history]
    answer = ev.EventRaised(timestamp=NOW, name="r-call", input=ResponseMessage(result="3").to_json())
    for delivery in range(2):  # the entity's answer, then the same answer again (a redelivery)
        tracing.episode_committed(
            started=started,
            past=past,
            new_events=[ev.OrchestratorStarted(timestamp=NOW), answer],
            runtime_status=OrchestrationStatus.RUNNING,
            now=NOW + timedelta(seconds=1 + delivery),
        )
        past.append(answer)
    found = st.from_sdk(spans.get_finished_spans())
    client = st.one(found, "entity:counter:add", "CLIENT")
    sent = RequestMessage.from_json(next(e for e in plan.history if isinstance(e, ev.EventSent)).input)
    assert sent.parent_trace_context is not None
    assert sent.parent_trace_context["TraceParent"] == f"00-{TRACE}-{client.span_id}-01"
    assert client.parent_id == OWN


@pytest.mark.azurite
def test_entity_spans_of_an_orchestration_and_a_client(
    settings: TaskHubSettings, hub: TaskHub, spans
) -> None:
    tracer = trace.get_tracer("tests")
    counter = dh.EntityInstanceId("counter", "spans")
    with dh.Worker(app, settings), DurableClient(settings, hub=hub) as client:
        with tracer.start_as_current_span("signal request") as request:
            client.signal_entity(counter, "add", 10)
        signal_trace = f"{request.get_span_context().trace_id:032x}"
        iid = client.schedule_new_orchestration("entity_caller", input="spans")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state
    all_spans = st.from_sdk(spans.get_finished_spans())

    # The client's signal: a producer span under the caller's, the entity's consumer span under it.
    signalled = st.ours(all_spans, signal_trace)
    assert st.is_one_tree(signalled).name == "signal request"
    producer = st.one(signalled, "entity:counter:add", "PRODUCER")
    assert st.parent(signalled, producer).name == "signal request"
    assert producer.attributes == {
        "durabletask.type": "entity",
        "durabletask.task.operation": "signal_entity",
        "durabletask.event.target_instance_id": "@counter@spans",
    }
    assert st.one(signalled, "entity:counter:add", "CONSUMER").parent_id == producer.span_id

    create = st.one(all_spans, "create_orchestration:entity_caller", "PRODUCER")
    found = st.ours(all_spans, create.trace_id)
    st.no_duplicates(found)
    assert st.is_one_tree(found) == create
    root = st.one(found, "orchestration:entity_caller", "SERVER")

    signal = st.one(found, "entity:counter:add", "PRODUCER")
    assert signal.parent_id == root.span_id
    assert signal.attributes == {
        "durabletask.type": "entity",
        "durabletask.task.operation": "signal_entity",
        "durabletask.event.target_instance_id": "@counter@spans",
    }
    assert st.one(found, "entity:counter:add", "CONSUMER").parent_id == signal.span_id

    for operation in ("add", "get"):  # each call once, though replayed after its answer
        call = st.one(found, f"entity:counter:{operation}", "CLIENT")
        assert call.parent_id == root.span_id
        assert call.attributes == {
            "durabletask.type": "entity",
            "durabletask.task.operation": "call_entity",
            "durabletask.event.target_instance_id": "@counter@spans",
        }
        server = st.one(found, f"entity:counter:{operation}", "SERVER")
        assert server.parent_id == call.span_id
        assert server.attributes["durabletask.task.instance_id"] == "@counter@spans"
        assert call.start_ns <= server.start_ns and server.end_ns <= call.end_ns


@pytest.mark.azurite
async def test_a_signal_through_the_http_api_continues_the_callers_trace(
    settings: TaskHubSettings, hub: TaskHub, spans
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    key = "test-key-0123456789abcdef"
    async with AsyncDurableClient(settings) as durable:
        api = create_app(http_settings=HttpSettings(key=key, allowed_hosts=["testserver"]), client=durable)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api),
            base_url="http://testserver",
            headers={"x-functions-key": key},
        ) as http:
            response = await http.post(
                "/runtime/webhooks/durabletask/entities/counter/web",
                params={"op": "add"},
                json=1,
                headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
            )
            assert response.status_code == 202, response.text
    found = st.ours(st.from_sdk(spans.get_finished_spans()), caller_trace)
    producer = st.one(found, "entity:counter:add", "PRODUCER")
    assert st.is_one_tree(found).parent_id == caller_span
    assert producer.attributes["durabletask.event.target_instance_id"] == "@counter@web"
    # The message waiting in the entity's control queue names the producer span.
    queue = QueueClient.from_connection_string(
        settings.connection_string.get_secret_value(), hub.control_queue_for("@counter@web").name
    )
    with queue:
        [body] = [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]
    request = json.loads(body["TaskMessage"]["Event"]["Input"])
    assert request["parentTraceContext"]["TraceParent"] == f"00-{caller_trace}-{producer.span_id}-01"
