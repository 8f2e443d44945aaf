"""Messages a worker sends to itself arrive already held: no receive, no poll interval."""

from __future__ import annotations

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def test_work_items_and_responses_are_handed_over_in_memory(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    with dh.Worker(app, settings) as worker:
        assert worker.owned_partitions == settings.names.control_queues  # the only worker
        iid = client.schedule_new_orchestration("chain", input=5)
        state = client.wait_for_orchestration_completion(iid, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 10
        # Each step: the TaskScheduled to the local activity runner and its TaskCompleted back
        # to the partition this worker owns. Only the client's ExecutionStarted was received.
        assert worker.messages_handed_over == 10
        assert worker.activities_executed == 5
    history = client.get_orchestration_history(iid)
    assert [type(e).__name__ for e in history].count("TaskCompleted") == 5  # no duplicates


def test_held_messages_of_a_stopped_worker_are_consumed_by_the_next(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    with dh.Worker(app, settings):
        iid = client.schedule_new_orchestration("slow_chain", input={"steps": 3, "seconds": 0.5})
        client.wait_for_orchestration_start(iid, timeout=30)
    # The graceful stop handed every held message back: a new worker finishes the chain.
    with dh.Worker(app, settings):
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 3
