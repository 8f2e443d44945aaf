"""An entity whose partition moves to another worker and back is never answered from the
state the first worker had cached before it left."""

from __future__ import annotations

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.names import partition_index
from tests.e2e.conftest import wait_until
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def _key_on(partition: int, count: int) -> str:
    return next(
        key for key in (f"k{n}" for n in range(1000)) if partition_index(f"@tally@{key}", count) == partition
    )


def _tally(client: DurableClient, key: str) -> int | None:
    found = client.get_entity(dh.EntityInstanceId("tally", key))
    return None if found is None else found.get_state()


def test_an_entity_partition_that_moves_away_and_back_gives_no_stale_answer(
    settings: TaskHubSettings,
) -> None:
    settings = settings.model_copy(update={"partition_count": 2})
    keys = [_key_on(0, 2), _key_on(1, 2)]  # whichever partition moves, one of these is on it
    with DurableClient(settings) as client:
        first = dh.Worker(app, settings, worker_id="worker-a").start()
        try:
            for key in keys:
                client.signal_entity(dh.EntityInstanceId("tally", key), "add", 1)
            wait_until(lambda: all(_tally(client, k) == 1 for k in keys), 30, "both tallies at 1")

            second = dh.Worker(app, settings, worker_id="worker-b").start()
            try:
                wait_until(lambda: len(second.owned_partitions) == 1, 30, "the second worker's share")
                moved = keys[int(second.owned_partitions[0].rsplit("-", 1)[1])]
                for _ in range(2):  # applied by the second worker: 1 → 3
                    client.signal_entity(dh.EntityInstanceId("tally", moved), "add", 1)
                wait_until(lambda: _tally(client, moved) == 3, 30, "the moved tally at 3")
            finally:
                second.stop()  # hands its partition back to the first worker
            wait_until(lambda: len(first.owned_partitions) == 2, 30, "the first worker to own both again")

            iid = client.schedule_new_orchestration("read_tally", input=moved)
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.get_output() == 3, "answered from the state cached before the partition left"
            assert _tally(client, moved) == 3
        finally:
            first.stop()
