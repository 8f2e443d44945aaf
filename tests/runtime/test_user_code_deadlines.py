"""User code that never returns (an entity operation, an activity) fails its caller at a
deadline, as a blocked orchestrator does, and never holds a worker's stop beyond its timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from tests.runtime.apps import BLOCK_REPLAY, RELEASE, app

pytestmark = pytest.mark.azurite


@pytest.fixture(autouse=True)
def release_user_code() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()  # threads left behind in user code end with the test


def stop_within(worker: dh.Worker, seconds: float) -> None:
    stopper = threading.Thread(target=worker.stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    assert not stopper.is_alive(), f"the worker's stop did not end within {seconds} s"


def test_a_stuck_entity_operation_fails_its_caller_and_the_entity_goes_on(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    options = WorkerOptions(entity_operation_timeout_seconds=2)
    worker = dh.Worker(app, settings, options=options).start()
    try:
        iid = client.schedule_new_orchestration("hang_then_add", input="k")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state.failure_details
        assert state.get_output() == {"hang": "durablehub.errors.EntityOperationTimeoutError", "add": 5}
        entity = client.get_entity(dh.EntityInstanceId("sticky", "k"))
        assert entity is not None and entity.get_state() == 5  # the stuck operation changed nothing
    finally:
        stop_within(worker, 30)


def test_stuck_activities_fail_at_their_deadline_and_others_still_run(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    options = WorkerOptions(activity_timeout_seconds=2, max_concurrent_activities=1)
    worker = dh.Worker(app, settings, options=options).start()
    try:
        iid = client.schedule_new_orchestration("stuck_activities")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.get_output() == [
            "durablehub.errors.ActivityTimeoutError",
            "durablehub.errors.ActivityTimeoutError",
            "still running activities",  # the one slot was not lost to the blocked thread
        ]
    finally:
        stop_within(worker, 30)


def test_a_stop_ends_within_its_drain_timeout_while_an_entity_operation_hangs(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    options = WorkerOptions(entity_operation_timeout_seconds=600, drain_timeout_seconds=2)
    worker = dh.Worker(app, settings, options=options).start()
    try:
        client.signal_entity(dh.EntityInstanceId("sticky", "stop"), "hang")
        threading.Event().wait(3)  # the batch is now asleep in the operation
    finally:
        stop_within(worker, 20)


def test_a_rewind_whose_replay_blocks_fails_at_the_deadline(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    worker = dh.Worker(app, settings, options=WorkerOptions(orchestrator_timeout_seconds=2)).start()
    try:
        iid = client.schedule_new_orchestration("blocks_when_rewound")
        failed = client.wait_for_orchestration_completion(iid, timeout=30)
        assert failed.failure_details is not None and "boom" in failed.failure_details.message
        BLOCK_REPLAY.set()
        client.rewind_orchestration(iid, reason="try again")
        deadline = time.monotonic() + 30
        while not (
            (state := client.get_orchestration_state(iid)).failure_details or failed.failure_details
        ).is_caused_by(dh.OrchestratorTimeoutError):
            assert time.monotonic() < deadline, f"the rewind did not end: {state.failure_details}"
            time.sleep(0.2)
        assert state.runtime_status is dh.OrchestrationStatus.FAILED
    finally:
        BLOCK_REPLAY.clear()
        stop_within(worker, 30)
