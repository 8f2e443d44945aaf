"""Every Durable Functions pattern, end to end: a client, two worker processes, one Azurite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from tests.e2e.conftest import WorkerProcesses

pytestmark = pytest.mark.azurite
DONE = dh.OrchestrationStatus.COMPLETED


def run(
    client: DurableClient, name: str, input: object = None, *, timeout: float = 60, **kw
) -> dh.OrchestrationState:  # noqa: A002, ANN003
    iid = client.schedule_new_orchestration(name, input=input, **kw)
    return client.wait_for_orchestration_completion(iid, timeout=timeout)


def test_chaining(client: DurableClient, two_workers: WorkerProcesses) -> None:
    state = run(client, "hello_cities")
    assert state.runtime_status == DONE, two_workers.logs()
    assert state.get_output() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    history = client.get_orchestration_history(state.instance_id)
    kinds = [type(e).__name__ for e in history]
    assert kinds[:2] == ["OrchestratorStarted", "ExecutionStarted"] and kinds[-1] == "OrchestratorCompleted"
    assert kinds.count("TaskScheduled") == 3 and kinds.count("TaskCompleted") == 3


def test_fan_out_fan_in_of_200_activities(client: DurableClient, two_workers: WorkerProcesses) -> None:
    state = run(client, "fan_out_fan_in", 200, timeout=120)
    assert state.runtime_status == DONE, two_workers.logs()
    assert state.get_output() == sum(2 * i for i in range(200))


def test_monitor_with_timers_and_custom_status(client: DurableClient, two_workers: WorkerProcesses) -> None:
    state = run(client, "monitor", {"checks": 3, "interval": 1})
    assert state.runtime_status == DONE and state.get_output() == 3
    assert state.get_custom_status() == {"checks": 3}
    assert (state.last_updated_at - state.created_at).total_seconds() >= 3


def test_human_interaction_event_wins(client: DurableClient, two_workers: WorkerProcesses) -> None:
    iid = client.schedule_new_orchestration("approval", input=60)
    client.wait_for_orchestration_start(iid, timeout=30)
    client.raise_orchestration_event(iid, "Approval", data={"by": "manager"})
    state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == {"approved": {"by": "manager"}}


def test_human_interaction_timeout_wins(client: DurableClient, two_workers: WorkerProcesses) -> None:
    state = run(client, "approval", 2)
    assert state.get_output() == {"approved": None, "timed_out": True}


def test_a_cancelled_timer_does_not_hold_the_instance_and_its_late_firing_is_ignored(
    client: DurableClient, workers: WorkerProcesses
) -> None:
    workers.start(1)
    iid = client.schedule_new_orchestration("approval_cancelling_its_timer", input=3)
    client.wait_for_orchestration_start(iid, timeout=30)
    client.raise_orchestration_event(iid, "Approval", data="yes")
    state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.runtime_status == DONE, (state.failure_details, workers.logs())
    assert state.get_output() == {"approved": "yes", "timer_cancelled": True}
    history = client.get_orchestration_history(iid)
    time.sleep(5)  # the timer fires 3 s after the start, on a finished instance
    after = client.get_orchestration_state(iid)
    assert after is not None and after.runtime_status == DONE and after.get_output() == state.get_output()
    assert len(client.get_orchestration_history(iid)) == len(history)
    assert "Traceback" not in workers.logs()


def test_event_raised_before_the_wait_is_kept(client: DurableClient, two_workers: WorkerProcesses) -> None:
    iid = client.schedule_new_orchestration("status_reporter")
    client.raise_orchestration_event(iid, "go", data=42)  # may arrive in the same batch as the start
    state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == 42 and state.get_custom_status() == {"stage": "done", "value": 42}


def test_custom_status_while_running(client: DurableClient, two_workers: WorkerProcesses) -> None:
    import time

    iid = client.schedule_new_orchestration("status_reporter")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = client.get_orchestration_state(iid)
        if state is not None and state.get_custom_status() == {"stage": "waiting"}:
            break
        time.sleep(0.2)
    assert state.runtime_status == dh.OrchestrationStatus.RUNNING
    client.raise_orchestration_event(iid, "go", data="now")
    assert client.wait_for_orchestration_completion(iid, timeout=30).get_output() == "now"


def test_singleton_start(client: DurableClient, two_workers: WorkerProcesses, tmp_path: Path) -> None:
    spec = {"path": str(tmp_path / "cleanup.log")}
    client.schedule_new_orchestration("cleanup_job", input=spec, instance_id="cleanup")
    client.wait_for_orchestration_start("cleanup", timeout=30)
    with pytest.raises(dh.OrchestrationAlreadyExistsError, match="cleanup"):
        client.schedule_new_orchestration("cleanup_job", input=spec, instance_id="cleanup")
    client.raise_orchestration_event("cleanup", "finish")
    assert client.wait_for_orchestration_completion("cleanup", timeout=30).get_output() == "cleaned"
    client.schedule_new_orchestration(
        "cleanup_job", input=spec, instance_id="cleanup"
    )  # finished: replaceable
    client.raise_orchestration_event("cleanup", "finish")
    state = client.wait_for_orchestration_completion("cleanup", timeout=30)
    assert state.runtime_status == DONE
    assert Path(spec["path"]).read_text().splitlines() == ["cleanup", "cleanup"]


def test_saga_compensates_after_an_activity_failure(
    client: DurableClient, two_workers, tmp_path: Path
) -> None:
    log = tmp_path / "saga.log"
    state = run(client, "book_trip", {"path": str(log), "fail_at": "car"})
    assert state.get_output() == {
        "status": "compensated",
        "error": "car is sold out",
        "error_type": "builtins.ValueError",
    }
    assert log.read_text().splitlines() == ["book flight", "book hotel", "cancel hotel", "cancel flight"]


def test_sub_orchestrations_results_and_failures(client: DurableClient, two_workers: WorkerProcesses) -> None:
    state = run(client, "parent", [1, 2, 3])
    assert state.get_output() == {"results": [2, 4, 6], "failures": ["negative input -1"]}
    child = client.get_orchestration_state(f"{state.instance_id}-child-1")
    assert child.runtime_status == DONE and child.get_output() == 4


def test_eternal_orchestration_with_continue_as_new(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    state = run(client, "eternal", {"count": 0, "until": 5})
    assert state.runtime_status == DONE and state.get_output() == 5
    history = client.get_orchestration_history(state.instance_id)
    started = [e for e in history if type(e).__name__ == "ExecutionStarted"]
    assert len(started) == 1 and started[0].input == '{"count":4,"until":5}'


def test_retries_with_backoff(client: DurableClient, two_workers: WorkerProcesses, tmp_path: Path) -> None:
    spec = {"path": str(tmp_path / "flaky.log"), "succeed_on": 3, "attempts": 4}
    state = run(client, "retrying", spec)
    assert state.get_output() == 3
    assert (state.last_updated_at - state.created_at).total_seconds() >= 3  # waited 1 s, then 2 s
    failed = run(
        client, "retrying", {**spec, "path": str(tmp_path / "flaky2.log"), "succeed_on": 9, "attempts": 2}
    )
    assert failed.runtime_status == dh.OrchestrationStatus.FAILED
    assert (
        failed.failure_details.error_type == "durablehub.errors.TaskFailedError"
        or "attempt 2 failed" in failed.failure_details.message
    )


def test_200_kb_input_and_output(client: DurableClient, two_workers: WorkerProcesses) -> None:
    data = "é" * 200_000
    state = run(client, "big_payload", data)
    assert state.runtime_status == DONE and state.get_output() == data + "!"
    assert state.get_input() == data


def test_non_determinism_is_detected(client: DurableClient, workers: WorkerProcesses) -> None:
    workers.start(2, DURABLEHUB_ORCHESTRATION_CACHE_SIZE="0")  # every episode replays cold
    state = run(client, "nondeterministic")
    assert state.runtime_status == dh.OrchestrationStatus.FAILED, workers.logs()
    assert state.failure_details.error_type == "durablehub.errors.NonDeterminismError"
    assert "say_hello" in state.failure_details.message and "echo" in state.failure_details.message


def test_unknown_orchestrator_fails_that_instance_only(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    state = run(client, "no_such_orchestrator")
    assert state.runtime_status == dh.OrchestrationStatus.FAILED
    assert "no_such_orchestrator" in state.failure_details.message
    assert run(client, "hello_cities").runtime_status == DONE
