"""The sidecar carries the trace context both ways (``parentTraceContext``,
``orchestrationTraceContext``): the spans durabletask-python emits for the code it runs join
the trace of the durablehub client that started the instance, with the orchestration span id
the task hub recorded, and durablehub does not emit those spans a second time."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

pytest.importorskip("durabletask")

from durabletask import task  # noqa: E402

from durablehub.client import DurableClient  # noqa: E402
from durablehub.models import OrchestrationStatus  # noqa: E402
from durablehub.settings import TaskHubSettings  # noqa: E402
from tests.sidecar.conftest import SdkWorkerFactory, address, sdk_client, sdk_worker, sidecar  # noqa: E402, F401
from tests.telemetry import spantree as st  # noqa: E402

pytestmark = pytest.mark.azurite


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def greetings(ctx: task.OrchestrationContext, _: object):
    first = yield ctx.call_activity(greet, input="Tokyo")
    yield ctx.create_timer(ctx.current_utc_datetime)
    second = yield ctx.call_activity(greet, input="Lima")
    return [first, second]


# sdk_worker: the sidecar tests' fixture, imported above.
def test_sdk_spans_join_the_trace(
    settings: TaskHubSettings,
    sdk_worker: SdkWorkerFactory,  # noqa: F811
    spans,
) -> None:
    worker = sdk_worker()
    worker.add_orchestrator(greetings)
    worker.add_activity(greet)
    worker.start()
    with DurableClient(settings) as client:
        with trace.get_tracer("tests").start_as_current_span("caller") as caller:
            iid = client.schedule_new_orchestration("greetings", instance_id="sdk-traced")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status is OrchestrationStatus.COMPLETED, state
        started = next(
            e for e in client.get_orchestration_history(iid) if type(e).__name__ == "ExecutionStarted"
        )
    assert started.parent_trace_context is not None
    trace_id = f"{caller.get_span_context().trace_id:032x}"
    found = st.ours(st.from_sdk(spans.get_finished_spans()), trace_id)
    st.no_duplicates(found)
    assert st.is_one_tree(found).name == "caller"
    create = st.one(found, "create_orchestration:greetings", "PRODUCER")
    # One orchestration span, the SDK's, with the id recorded in the task hub's history.
    root = st.one(found, "orchestration:greetings", "SERVER")
    assert root.parent_id == create.span_id
    assert root.span_id == started.parent_trace_context["SpanId"], json.dumps(started.parent_trace_context)
    servers = [s for s in found if s.name == "activity:greet" and s.kind == "SERVER"]
    assert len(servers) == 2
    for server in servers:
        client_span = st.parent(found, server)
        assert (client_span.name, client_span.kind, client_span.parent_id) == (
            "activity:greet",
            "CLIENT",
            root.span_id,
        )


def test_an_sdk_clients_start_continues_its_span(
    sdk_worker: SdkWorkerFactory,  # noqa: F811
    sdk_client,  # noqa: F811
    spans,
) -> None:
    """durabletask-python's client makes the create_orchestration span and sends its context
    (``CreateInstanceRequest.parentTraceContext``): the orchestration is its child, and the
    sidecar makes no second create span."""
    worker = sdk_worker()
    worker.add_orchestrator(greetings)
    worker.add_activity(greet)
    worker.start()
    with trace.get_tracer("tests").start_as_current_span("caller") as caller:
        iid = sdk_client.schedule_new_orchestration(greetings, instance_id="sdk-client-traced")
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status.name == "COMPLETED"
    found = st.ours(st.from_sdk(spans.get_finished_spans()), f"{caller.get_span_context().trace_id:032x}")
    st.no_duplicates(found)
    assert st.is_one_tree(found).name == "caller"
    create = st.one(found, "create_orchestration:greetings")
    assert create.parent_id == f"{caller.get_span_context().span_id:016x}"
    assert st.one(found, "orchestration:greetings", "SERVER").parent_id == create.span_id


def test_a_signal_through_the_sidecar_is_a_producer_span_under_the_sdks(address: str, spans) -> None:  # noqa: F811
    """An SDK client that sends its span's context with ``SignalEntityRequest`` (the .NET one
    does): the sidecar's producer span for the signal is its child, as DTFx's backend makes it."""
    import grpc
    from durabletask.internal import orchestrator_service_pb2 as pb
    from durabletask.internal import orchestrator_service_pb2_grpc as stubs

    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    request = pb.SignalEntityRequest(
        instanceId="@counter@sdk",
        name="add",
        requestId="7b0d6c3e-5f1a-4c55-9a0e-2f3d4b5c6d7e",
        parentTraceContext=pb.TraceContext(traceParent=f"00-{caller_trace}-{caller_span}-01"),
    )
    with grpc.insecure_channel(address) as channel:
        stubs.TaskHubSidecarServiceStub(channel).SignalEntity(request, timeout=10)
    found = st.ours(st.from_sdk(spans.get_finished_spans()), caller_trace)
    producer = st.one(found, "entity:counter:add", "PRODUCER")
    assert producer.parent_id == caller_span
    assert producer.attributes["durabletask.event.target_instance_id"] == "@counter@sdk"
