"""An orchestrator that blocks in user code fails its instance at the episode deadline."""

from __future__ import annotations

import time

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.names import partition_index
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite
DEADLINE = 4.0  # a three-step chain on a loaded machine finishes well within it


def same_partition_id(instance_id: str, count: int, prefix: str) -> str:
    target = partition_index(instance_id, count)
    return next(f"{prefix}-{n}" for n in range(1000) if partition_index(f"{prefix}-{n}", count) == target)


def test_a_blocked_episode_fails_its_instance_and_the_partition_keeps_going(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    options = WorkerOptions(orchestrator_timeout_seconds=DEADLINE)
    blocked = "blocked-1"
    neighbour = same_partition_id(blocked, settings.partition_count, "neighbour")
    worker = dh.Worker(app, settings, options=options).start()
    try:
        client.schedule_new_orchestration("blocks", input=60, instance_id=blocked)
        client.wait_for_orchestration_start(blocked, timeout=30)
        time.sleep(0.5)  # its second episode is now asleep in orchestrator code
        client.schedule_new_orchestration("chain", input=3, instance_id=neighbour)
        done = client.wait_for_orchestration_completion(neighbour, timeout=30)
        assert done.runtime_status == dh.OrchestrationStatus.COMPLETED and done.get_output() == 3
        # It did not wait for the blocked episode to end: that one is still running.
        assert client.get_orchestration_state(blocked).runtime_status is dh.OrchestrationStatus.RUNNING  # type: ignore[union-attr]

        state = client.wait_for_orchestration_completion(blocked, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.FAILED
        failure = state.failure_details
        assert failure is not None and failure.is_caused_by(dh.OrchestratorTimeoutError)
        assert f"'{blocked}'" in failure.message and f"{DEADLINE:g} s" in failure.message
        assert "DURABLEHUB_ORCHESTRATOR_TIMEOUT_SECONDS" in failure.message
        kinds = [type(e).__name__ for e in client.get_orchestration_history(blocked)]
        assert kinds[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
        assert kinds.count("ExecutionCompleted") == 1

        parent = client.schedule_new_orchestration("parent_of_blocked", input=60)
        outcome = client.wait_for_orchestration_completion(parent, timeout=30)
        assert outcome.get_output() == {"child failed": "durablehub.errors.OrchestratorTimeoutError"}
    finally:
        stopping = time.monotonic()
        worker.stop()
    assert time.monotonic() - stopping < 15  # threads still asleep in user code do not hold the stop


def test_the_deadline_is_an_option_and_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerOptions().orchestrator_timeout_seconds == 60
    monkeypatch.setenv("DURABLEHUB_ORCHESTRATOR_TIMEOUT_SECONDS", "2.5")
    assert WorkerOptions().orchestrator_timeout_seconds == 2.5
    with pytest.raises(ValueError):
        WorkerOptions(orchestrator_timeout_seconds=0)
