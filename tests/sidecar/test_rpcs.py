"""Client RPCs and their error codes, stale completions, and RPCs not served (no worker needed)."""

from __future__ import annotations

import grpc
import pytest
from durabletask import client as dt_client
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from google.protobuf import empty_pb2, wrappers_pb2

from durablehub.client import DurableClient
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings


@pytest.fixture
def stub(address: str):
    with grpc.insecure_channel(address) as channel:
        yield stubs.TaskHubSidecarServiceStub(channel)


def _code(call, *args: object, **kwargs: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code()


def test_hello(stub) -> None:
    assert stub.Hello(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()


def test_start_and_get_without_a_worker(
    sdk_client: dt_client.TaskHubGrpcClient, settings: TaskHubSettings
) -> None:
    iid = sdk_client.schedule_new_orchestration(
        "NotRunYet", input={"a": 1}, instance_id="pending-1", tags={"t": "v"}
    )
    state = sdk_client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.PENDING
    assert (state.name, state.serialized_input) == ("NotRunYet", '{"a": 1}')  # as the SDK sent it
    with DurableClient(settings) as client:  # the same row durablehub's own client writes
        own = client.get_orchestration_state(iid)
        assert (
            own is not None and own.runtime_status is OrchestrationStatus.PENDING and own.tags == {"t": "v"}
        )
    assert sdk_client.get_orchestration_state("no-such-instance") is None


def test_payloads_are_kept_as_the_sdk_sent_them(stub, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    """An SDK with a payload store sends references, not JSON; its own side reads them back."""
    reference = "blob:v1:payloads:abc/def"
    stub.StartInstance(
        pb.CreateInstanceRequest(
            instanceId="big", name="Orch", input=wrappers_pb2.StringValue(value=reference)
        )
    )
    state = sdk_client.get_orchestration_state("big")
    assert state is not None and state.serialized_input == reference


def test_errors_map_to_the_codes_the_sdks_expect(stub, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    sdk_client.schedule_new_orchestration("Orch", instance_id="taken")
    assert _code(stub.StartInstance, pb.CreateInstanceRequest(instanceId="taken", name="Orch")) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    assert _code(stub.StartInstance, pb.CreateInstanceRequest(instanceId="a/b", name="Orch")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        _code(stub.RaiseEvent, pb.RaiseEventRequest(instanceId="missing", name="E"))
        == grpc.StatusCode.NOT_FOUND
    )
    assert _code(stub.SuspendInstance, pb.SuspendRequest(instanceId="missing")) == grpc.StatusCode.NOT_FOUND
    assert _code(stub.ResumeInstance, pb.ResumeRequest(instanceId="missing")) == grpc.StatusCode.NOT_FOUND
    assert (
        _code(stub.TerminateInstance, pb.TerminateRequest(instanceId="missing")) == grpc.StatusCode.NOT_FOUND
    )


def test_a_wait_honours_the_callers_deadline(sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration("NobodyRunsThis")
    with pytest.raises(TimeoutError):
        sdk_client.wait_for_orchestration_completion(iid, timeout=2)


def test_stale_completions_are_refused(stub) -> None:
    response = pb.ActivityResponse(instanceId="i", taskId=0, completionToken="stale-token")
    assert _code(stub.CompleteActivityTask, response) == grpc.StatusCode.FAILED_PRECONDITION
    orchestration = pb.OrchestratorResponse(instanceId="i", completionToken="stale-token")
    assert _code(stub.CompleteOrchestratorTask, orchestration) == grpc.StatusCode.FAILED_PRECONDITION
    abandon = pb.AbandonActivityTaskRequest(completionToken="stale-token")
    assert _code(stub.AbandonTaskActivityWorkItem, abandon) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("rpc", "request_"),
    [
        ("CreateTaskHub", pb.CreateTaskHubRequest()),
        ("DeleteTaskHub", pb.DeleteTaskHubRequest()),
    ],
)
def test_rpcs_not_served_answer_unimplemented_at_once(stub, rpc: str, request_: object) -> None:
    assert _code(getattr(stub, rpc), request_, timeout=5) == grpc.StatusCode.UNIMPLEMENTED


def test_an_invalid_taskhub_in_the_metadata_is_refused(stub) -> None:
    call = stub.GetInstance
    request = pb.GetInstanceRequest(instanceId="i")
    assert _code(call, request, metadata=[("taskhub", "no-such_hub!")]) == grpc.StatusCode.INVALID_ARGUMENT
