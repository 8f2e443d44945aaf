"""A graceful stop is bounded by its timeouts even when storage has gone away: releasing a
lease is a courtesy (an unreleased one expires), so a release that cannot reach storage must
not hold the stop for the storage SDK's whole retry schedule, partition after partition."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def test_a_worker_whose_storage_vanished_stops_within_its_timeouts(tmp_path: Path) -> None:
    azurite = AzuriteProcess(location=tmp_path / "azurite-data")
    azurite.__enter__()
    try:
        settings = dh.TaskHubSettings(task_hub="Vanishing", connection_string=azurite.connection_string)
        options = dh.WorkerOptions(drain_timeout_seconds=2, activity_drain_timeout_seconds=2)
        worker = dh.Worker(app, settings, options=options).start()
        with dh.DurableClient(settings) as client:
            iid = client.schedule_new_orchestration("chain", input=3)
            assert client.wait_for_orchestration_completion(iid, timeout=60).get_output() == 3
        assert len(worker.owned_partitions) == 4
    finally:
        azurite.__exit__(None, None, None)
    stopping = time.monotonic()
    worker.stop()
    # Drains of 2 s and a bounded release of each of 4 partitions, at once: well under 30 s
    # (it took over 70 s when each release waited out the SDK's retries, one after another).
    assert time.monotonic() - stopping < 30
