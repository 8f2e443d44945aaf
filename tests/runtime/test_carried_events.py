"""Events carried over by continue_as_new(save_events=True) keep the order they were raised in,
ahead of events that reached the queue meanwhile."""

from __future__ import annotations

from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.worker import Worker
from tests.runtime.apps import app


def test_carried_over_events_keep_their_order(settings: TaskHubSettings, client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("collect", input=[])
    for value in range(1, 6):  # raised at once: most wait in the queue behind the first generation
        client.raise_orchestration_event(iid, "item", data=value)
    with Worker(app, settings, options=WorkerOptions(max_poll_interval_seconds=0.2)):
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.get_output() == [1, 2, 3, 4, 5]
