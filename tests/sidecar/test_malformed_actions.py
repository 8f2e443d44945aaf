"""What an SDK worker answers is checked like any other input: a malformed action fails its
instance once, with a failure naming the field (crafted ``OrchestratorResponse``s sent with the
durabletask package's own protobuf on a raw gRPC stream, to a real sidecar on Azurite)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask.entities import EntityInstanceId
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from google.protobuf import timestamp_pb2, wrappers_pb2


class RawWorker:
    """A ``GetWorkItems`` stream read on a thread: the work items arrive in ``items``."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.insecure_channel(address)
        self.stub = stubs.TaskHubSidecarServiceStub(self._channel)
        self._call: Any = self.stub.GetWorkItems(pb.GetWorkItemsRequest())
        self.items: queue.Queue[pb.WorkItem] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for item in self._call:
                if not item.HasField("healthPing"):
                    self.items.put(item)
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    def next_for(self, instance_id: str, timeout: float) -> pb.WorkItem | None:
        """The next orchestration or entity work item of ``instance_id`` (None: none came)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.items.get(timeout=left)
            except queue.Empty:
                return None
            if instance_id in (item.orchestratorRequest.instanceId, item.entityRequest.instanceId):
                return item
        return None

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(timeout=5)
        self._channel.close()


@pytest.fixture
def raw_worker(address: str) -> Iterator[RawWorker]:
    worker = RawWorker(address)
    yield worker
    worker.close()


def _entity_message(**kind: Any) -> pb.OrchestratorAction:
    return pb.OrchestratorAction(id=0, sendEntityMessage=pb.SendEntityMessageAction(**kind))


_MALFORMED: dict[str, tuple[pb.OrchestratorAction, str]] = {
    "sub-orchestration id with a path and CR/LF": (
        pb.OrchestratorAction(
            id=0,
            createSubOrchestration=pb.CreateSubOrchestrationAction(
                name="Child", instanceId="../../x\r\nInjected: 1"
            ),
        ),
        "createSubOrchestration.instanceId",
    ),
    "completion with status RUNNING": (
        pb.OrchestratorAction(
            id=0,
            completeOrchestration=pb.CompleteOrchestrationAction(
                orchestrationStatus=pb.ORCHESTRATION_STATUS_RUNNING
            ),
        ),
        "completeOrchestration.orchestrationStatus",
    ),
    "lock position out of the lock set": (
        _entity_message(
            entityLockRequested=pb.EntityLockRequestedEvent(
                criticalSectionId="cs-1", lockSet=["@counter@a"], position=99
            )
        ),
        "entityLockRequested.position",
    ),
    "entity id that is not one": (
        _entity_message(
            entityOperationSignaled=pb.EntityOperationSignaledEvent(
                requestId="r-1",
                operation="add",
                targetInstanceId=wrappers_pb2.StringValue(value="not-an-entity"),
            )
        ),
        "entityOperationSignaled.targetInstanceId",
    ),
    "activity without a name": (
        pb.OrchestratorAction(id=0, scheduleTask=pb.ScheduleTaskAction(name="")),
        "scheduleTask.name",
    ),
    "activity name with CR/LF": (
        pb.OrchestratorAction(id=0, scheduleTask=pb.ScheduleTaskAction(name="A\r\nCRITICAL forged")),
        "scheduleTask.name",
    ),
    "sub-orchestration name with CR/LF": (
        pb.OrchestratorAction(
            id=0, createSubOrchestration=pb.CreateSubOrchestrationAction(name="Child\nx", instanceId="c-1")
        ),
        "createSubOrchestration.name",
    ),
    "event name with CR/LF": (
        pb.OrchestratorAction(
            id=0,
            sendEvent=pb.SendEventAction(instance=pb.OrchestrationInstance(instanceId="other"), name="E\r\n"),
        ),
        "sendEvent.name",
    ),
    "entity operation name with CR/LF": (
        _entity_message(
            entityOperationSignaled=pb.EntityOperationSignaledEvent(
                requestId="r-1",
                operation="add\r\nInjected",
                targetInstanceId=wrappers_pb2.StringValue(value="@counter@a"),
            )
        ),
        "entityOperationSignaled.operation",
    ),
    "timer without a time": (
        pb.OrchestratorAction(id=0, createTimer=pb.CreateTimerAction()),
        "createTimer.fireAt",
    ),
    "timer past year 9999": (
        pb.OrchestratorAction(
            id=0, createTimer=pb.CreateTimerAction(fireAt=timestamp_pb2.Timestamp(seconds=2**40))
        ),
        "createTimer.fireAt",
    ),
    "event to no instance": (
        pb.OrchestratorAction(
            id=0, sendEvent=pb.SendEventAction(instance=pb.OrchestrationInstance(instanceId=""), name="E")
        ),
        "sendEvent.instance.instanceId",
    ),
}


_MALFORMED_ANSWERS: dict[str, tuple[list[pb.OrchestratorAction], str]] = {
    case: ([action], field) for case, (action, field) in _MALFORMED.items()
}
_MALFORMED_ANSWERS["two actions with one id"] = (
    [
        pb.OrchestratorAction(id=1, scheduleTask=pb.ScheduleTaskAction(name="A")),
        pb.OrchestratorAction(id=1, scheduleTask=pb.ScheduleTaskAction(name="B")),
    ],
    "actions[1].id",
)


@pytest.mark.parametrize("case", list(_MALFORMED_ANSWERS))
def test_a_malformed_action_fails_its_instance_once_naming_the_field(
    case: str, raw_worker: RawWorker, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    actions, field = _MALFORMED_ANSWERS[case]
    iid = sdk_client.schedule_new_orchestration("Crafted", instance_id="crafted-1")
    item = raw_worker.next_for(iid, timeout=30)
    assert item is not None, "the sidecar never offered the episode"
    raw_worker.stub.CompleteOrchestratorTask(
        pb.OrchestratorResponse(instanceId=iid, completionToken=item.completionToken, actions=actions),
        timeout=10,
    )
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED, state
    assert state.failure_details is not None and field in state.failure_details.message, state.failure_details
    # Once: the episode is not offered again (a failing commit would be retried, and offered again).
    again = raw_worker.next_for(iid, timeout=3)
    assert again is None, f"the episode was offered again: {again}"


_BAD_ENTITY_ACTIONS: dict[str, pb.OperationAction] = {
    "signal to an id that is not an entity": pb.OperationAction(
        sendSignal=pb.SendSignalAction(instanceId="not-an-entity", name="add")
    ),
    "signal with CR/LF in its operation name": pb.OperationAction(
        sendSignal=pb.SendSignalAction(instanceId="@counter@b", name="add\r\nforged")
    ),
    "orchestration started with a path for an id": pb.OperationAction(
        startNewOrchestration=pb.StartNewOrchestrationAction(name="Orch", instanceId="../x")
    ),
}


@pytest.mark.parametrize("case", list(_BAD_ENTITY_ACTIONS))
def test_a_malformed_entity_answer_fails_its_operation_once(
    case: str, raw_worker: RawWorker, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    entity = EntityInstanceId("counter", "a")
    sdk_client.signal_entity(entity, "add", input=1)
    item = raw_worker.next_for(str(entity), timeout=30)
    assert item is not None, "the sidecar never offered the operation"
    raw_worker.stub.CompleteEntityTask(
        pb.EntityBatchResult(
            completionToken=item.completionToken,
            results=[pb.OperationResult(success=pb.OperationResultSuccess())],
            entityState=wrappers_pb2.StringValue(value="1"),
            actions=[_BAD_ENTITY_ACTIONS[case]],
        ),
        timeout=10,
    )
    # The operation failed (its state change is not kept) and is not run again.
    again = raw_worker.next_for(str(entity), timeout=5)
    assert again is None, f"the operation was offered again: {again}"
    assert sdk_client.get_entity(entity) is None
