"""The quickstart's sample workflows, with an in-process Worker (the ``with Worker(...)`` form)."""

from __future__ import annotations

import pytest

import durablehub as dh
from durablehub.samples.workflows import app

pytestmark = pytest.mark.azurite


def test_sample_workflows_run_in_process(hub_settings: dh.TaskHubSettings) -> None:
    with dh.Worker(app, hub_settings) as worker, dh.DurableClient(hub_settings) as client:
        assert worker.owned_partitions == hub_settings.names.control_queues
        order = client.schedule_new_orchestration("ProcessOrder", input={"id": 7, "amount": 10.0})
        album = client.schedule_new_orchestration("BackupPhotoAlbum", input=["a.jpg", "bb.jpg"])
        expense = client.schedule_new_orchestration("ApproveExpense", input={"id": "E1", "amount": 5})
        client.wait_for_orchestration_start(expense, timeout=30)
        client.raise_orchestration_event(expense, "Approval", data={"approved": False, "by": "cfo"})
        assert (
            client.wait_for_orchestration_completion(order, timeout=30).get_output()["order"] == "ORD-00007"
        )
        assert client.wait_for_orchestration_completion(album, timeout=30).get_output() == {
            "photos": 2,
            "bytes": 11264,
        }
        decided = client.wait_for_orchestration_completion(expense, timeout=30)
        assert decided.get_output() == {"expense": "E1", "approved": False, "by": "cfo"}
        waiting = client.schedule_new_orchestration("ApproveExpense", input={"id": "E2", "amount": 1})
        state = client.wait_for_orchestration_start(waiting, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.RUNNING
        timers = [e for e in client.get_orchestration_history(waiting) if type(e).__name__ == "TimerCreated"]
        assert len(timers) == 1  # 72 hours: a single queue timer (under the 6-day limit)
    # graceful stop released every lease at once
    from durablehub.taskhub.hub import TaskHub

    with TaskHub(hub_settings) as hub:
        assert all(not s.leased and s.lease.owner is None for s in hub.leases.list())
