"""Terminate, suspend, resume, rewind and restart, against Azurite and a running worker."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from tests.management.apps import BROKEN, CALLS

pytestmark = pytest.mark.azurite
Status = dh.OrchestrationStatus


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_status(
    client: DurableClient, iid: str, status: Status, timeout: float = 20
) -> dh.OrchestrationState:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = client.get_orchestration_state(iid)
        if state is not None and state.runtime_status is status:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{iid} did not reach {status.name}; last state {state!r}")


def started(client: DurableClient, name: str, input: object = None, *, prefix: str) -> str:  # noqa: A002
    iid = client.schedule_new_orchestration(name, input=input, instance_id=new_id(prefix))
    client.wait_for_orchestration_start(iid, timeout=20)
    return iid


# --- terminate ---


def test_terminate_ends_a_running_instance_with_the_reason(client: DurableClient) -> None:
    iid = started(client, "waits_for_event", "Approval", prefix="term")
    client.terminate_orchestration(iid, output="cancelled by ops")
    state = client.wait_for_orchestration_completion(iid, timeout=20)
    assert state.runtime_status is Status.TERMINATED
    assert state.get_output() == "cancelled by ops"
    kinds = [type(e).__name__ for e in client.get_orchestration_history(iid)]
    assert "ExecutionTerminated" in kinds and kinds[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]

    with pytest.raises(dh.OrchestrationStateError, match="it is Terminated") as caught:
        client.terminate_orchestration(iid)
    assert caught.value.status == "Terminated" and caught.value.instance_id == iid
    with pytest.raises(dh.OrchestrationNotFoundError):
        client.terminate_orchestration(new_id("nobody"))


@pytest.mark.parametrize("recursive", [True, False])
def test_terminate_reaches_sub_orchestrations_when_recursive(client: DurableClient, recursive: bool) -> None:
    child = new_id("kid")
    parent = started(client, "parent_of_waiter", child, prefix="parent")
    client.wait_for_orchestration_start(child, timeout=20)
    wait_for_status(client, child, Status.RUNNING)

    client.terminate_orchestration(parent, output="stop", recursive=recursive)
    assert client.wait_for_orchestration_completion(parent, timeout=20).runtime_status is Status.TERMINATED
    if recursive:
        state = client.wait_for_orchestration_completion(child, timeout=20)
        assert state.runtime_status is Status.TERMINATED and state.get_output() == "stop"
    else:
        time.sleep(1.0)
        assert client.get_orchestration_state(child).runtime_status is Status.RUNNING  # type: ignore[union-attr]
        client.terminate_orchestration(child)


def test_terminate_of_a_scheduled_start_lands_before_anything_runs(client: DurableClient) -> None:
    iid = client.schedule_new_orchestration(
        "runs_a_step",
        input="never-run",
        instance_id=new_id("sched"),
        start_at=datetime.now(UTC) + timedelta(seconds=2),
    )
    client.terminate_orchestration(iid, output="not needed")
    state = client.wait_for_orchestration_completion(iid, timeout=20)
    assert state.runtime_status is Status.TERMINATED
    assert not any(isinstance(e, ev.TaskScheduled) for e in client.get_orchestration_history(iid))
    assert CALLS["never-run"] == 0


# --- suspend and resume ---


def test_events_sent_while_suspended_are_delivered_on_resume(client: DurableClient) -> None:
    iid = started(client, "waits_for_event", "Go", prefix="susp")
    client.suspend_orchestration(iid, reason="maintenance")
    state = wait_for_status(client, iid, Status.SUSPENDED)
    assert state.get_output() is None

    client.raise_orchestration_event(iid, "Go", data={"n": 1})
    time.sleep(1.0)  # the worker receives the event and keeps it
    assert client.get_orchestration_state(iid).runtime_status is Status.SUSPENDED  # type: ignore[union-attr]

    client.resume_orchestration(iid, reason="done")
    state = client.wait_for_orchestration_completion(iid, timeout=20)
    assert state.runtime_status is Status.COMPLETED and state.get_output() == {"got": {"n": 1}}
    kinds = [type(e).__name__ for e in client.get_orchestration_history(iid)]
    assert kinds.index("ExecutionSuspended") < kinds.index("EventRaised") < kinds.index("ExecutionResumed")

    for operation in (client.suspend_orchestration, client.resume_orchestration):
        with pytest.raises(dh.OrchestrationStateError, match="it is Completed"):
            operation(iid)
        with pytest.raises(dh.OrchestrationNotFoundError):
            operation(new_id("nobody"))


def test_a_suspended_instance_can_be_terminated(client: DurableClient) -> None:
    iid = started(client, "waits_for_event", "Go", prefix="susp-term")
    client.suspend_orchestration(iid)
    wait_for_status(client, iid, Status.SUSPENDED)
    client.terminate_orchestration(iid, output="gone")
    assert client.wait_for_orchestration_completion(iid, timeout=20).runtime_status is Status.TERMINATED


# --- rewind ---


@pytest.fixture
def outage():
    BROKEN.set()
    yield BROKEN
    BROKEN.clear()


def test_rewind_reruns_the_failed_activity_and_keeps_the_others(client: DurableClient, outage) -> None:
    tag = uuid.uuid4().hex[:6]
    iid = client.schedule_new_orchestration("pipeline", input=tag, instance_id=new_id("rewind"))
    failed = client.wait_for_orchestration_completion(iid, timeout=20)
    assert failed.runtime_status is Status.FAILED
    assert failed.failure_details is not None and "downstream unavailable" in failed.failure_details.message

    outage.clear()
    client.rewind_orchestration(iid, reason="downstream is back")
    state = client.wait_for_orchestration_completion(iid, timeout=20)
    assert state.runtime_status is Status.COMPLETED, state
    assert state.get_output() == [f"{tag}-first done", f"{tag}-fragile done", f"{tag}-last done"]
    assert state.failure_details is None
    assert CALLS[f"{tag}-first"] == 1  # kept from before the failure
    assert CALLS[f"{tag}-fragile"] == 2
    history = client.get_orchestration_history(iid)
    rewound = [e.reason for e in history if isinstance(e, ev.GenericEvent)]
    assert rewound == ["Rewound: TaskFailed", "Rewound: ExecutionCompleted"]
    assert any(isinstance(e, ev.ExecutionRewound) and e.reason == "downstream is back" for e in history)

    with pytest.raises(dh.OrchestrationStateError, match="it is Completed, not Failed"):
        client.rewind_orchestration(iid)
    with pytest.raises(dh.OrchestrationNotFoundError):
        client.rewind_orchestration(new_id("nobody"))


def test_rewind_reaches_a_failed_sub_orchestration(client: DurableClient, outage) -> None:
    tag = uuid.uuid4().hex[:6]
    iid = client.schedule_new_orchestration("pipeline_parent", input=tag, instance_id=new_id("rw-parent"))
    assert client.wait_for_orchestration_completion(iid, timeout=20).runtime_status is Status.FAILED
    child = f"{iid}-child"
    assert client.get_orchestration_state(child).runtime_status is Status.FAILED  # type: ignore[union-attr]

    outage.clear()
    client.rewind_orchestration(iid)
    state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.runtime_status is Status.COMPLETED, state
    assert state.get_output()["inner"][1] == f"{tag}-fragile done"
    assert client.get_orchestration_state(child).runtime_status is Status.COMPLETED  # type: ignore[union-attr]
    assert CALLS[f"{tag}-parent-step"] == 1 and CALLS[f"{tag}-first"] == 1


def test_rewind_of_a_running_instance_is_refused(client: DurableClient) -> None:
    iid = started(client, "waits_for_event", "Never", prefix="rw-running")
    with pytest.raises(dh.OrchestrationStateError, match="it is Running, not Failed") as caught:
        client.rewind_orchestration(iid)
    assert caught.value.status == "Running"
    client.terminate_orchestration(iid)


# --- restart ---


def test_restart_with_the_same_id_runs_a_new_generation_with_the_same_input(client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("echo_input", input={"order": 7}, instance_id=new_id("restart"))
    first = client.wait_for_orchestration_completion(iid, timeout=20)
    assert client.restart_orchestration(iid) == iid
    second = client.wait_for_orchestration_completion(iid, timeout=20)
    while second.execution_id == first.execution_id:  # the old generation may still show a moment
        time.sleep(0.05)
        second = client.wait_for_orchestration_completion(iid, timeout=20)
    assert second.runtime_status is Status.COMPLETED and second.get_output() == {"order": 7}


def test_restart_with_a_new_id_leaves_the_original_alone(client: DurableClient) -> None:
    iid = started(client, "waits_for_event", "Never", prefix="restart-new")
    new = client.restart_orchestration(iid, restart_with_new_instance_id=True)
    assert new != iid
    assert client.wait_for_orchestration_start(new, timeout=20).name == "waits_for_event"
    assert client.get_orchestration_state(new).get_input() == "Never"  # type: ignore[union-attr]
    with pytest.raises(dh.OrchestrationStateError, match="it is Running"):
        client.restart_orchestration(iid)
    with pytest.raises(dh.OrchestrationNotFoundError):
        client.restart_orchestration(new_id("nobody"), restart_with_new_instance_id=True)
    client.terminate_orchestration(iid)
    client.terminate_orchestration(new)
