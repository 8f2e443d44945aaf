"""Versions through the sidecar, as the protobuf carries them: StartInstance's version,
scheduleSubOrchestration's and continueAsNew's versions, OrchestrationState.version; and the
durablehub worker's versioning policy applied to SDK orchestrations."""

from __future__ import annotations

import grpc
from durabletask import client as dt_client
from durabletask import task
from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.settings import TaskHubSettings
from durablehub.sidecar import Sidecar
from tests.sidecar.conftest import FAST, SdkWorkerFactory


def child(ctx: task.OrchestrationContext, _: object) -> str | None:
    return ctx.version


def parent(ctx: task.OrchestrationContext, seen: list[str | None]):
    if not seen:  # the first generation: children with and without a version, then a new version
        named = yield ctx.call_sub_orchestrator(child, instance_id=f"{ctx.instance_id}-a", version="3.0")
        default = yield ctx.call_sub_orchestrator(child, instance_id=f"{ctx.instance_id}-b")
        ctx.continue_as_new([ctx.version, named, default], new_version="4.0")
        return None
    return [*seen, ctx.version]


def test_versions_pass_through_the_sidecar(
    sdk_worker: SdkWorkerFactory,
    sdk_client: dt_client.TaskHubGrpcClient,
    address: str,
    settings: TaskHubSettings,
) -> None:
    w = sdk_worker()
    # match_strategy must be given: the SDK takes a missing one for an unknown strategy
    w.use_versioning(
        dt_worker.VersioningOptions(default_version="2.5", match_strategy=dt_worker.VersionMatchStrategy.NONE)
    )
    w.add_orchestrator(parent)
    w.add_orchestrator(child)
    w.start()
    iid = sdk_client.schedule_new_orchestration(parent, input=[], version="1.0")
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.serialized_output == '["1.0", "3.0", "2.5", "4.0"]'
    with grpc.insecure_channel(address) as channel:
        got = stubs.TaskHubSidecarServiceStub(channel).GetInstance(pb.GetInstanceRequest(instanceId=iid))
    assert got.orchestrationState.version.value == "4.0"
    with DurableClient(settings) as client:
        assert [client.get_orchestration_state(f"{iid}-{s}").version for s in "ab"] == ["3.0", "2.5"]
        assert (client.get_orchestration_state(iid) or state).version == "4.0"


def test_the_worker_policy_applies_to_sdk_orchestrations(settings: TaskHubSettings) -> None:
    options = FAST.with_versioning(
        dh.VersioningOptions(
            version="1.0",
            match_strategy=dh.VersionMatchStrategy.STRICT,
            failure_strategy=dh.VersionFailureStrategy.FAIL,
        )
    )
    with Sidecar(settings, port=0, options=options) as sidecar:
        w = dt_worker.TaskHubGrpcWorker(host_address=f"127.0.0.1:{sidecar.port}")
        w.add_orchestrator(child)
        w.start()
        try:
            with DurableClient(settings) as client:
                ok = client.schedule_new_orchestration("child", version="1.0")
                refused = client.schedule_new_orchestration("child", version="2.0")
                assert client.wait_for_orchestration_completion(ok, timeout=60).get_output() == "1.0"
                failed = client.wait_for_orchestration_completion(refused, timeout=60)
                assert (
                    failed.failure_details is not None
                    and failed.failure_details.error_type == "VersionMismatch"
                )
                assert not [
                    e for e in client.get_orchestration_history(refused) if isinstance(e, ev.TaskScheduled)
                ]
        finally:
            w.stop()
