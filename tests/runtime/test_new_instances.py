"""A client's start of an instance it found no row for runs without reading history first.

The client read no Instances row (or drew a fresh id), so ExecutionStarted carries
Generation 0: the worker takes the history as empty and the sentinel's conditional insert
checks the guess. A restart (Generation 1+) and a redelivered start read history as before,
and a wrong guess (history left without a row) ends in a conflict, then a normal episode.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker
from tests.runtime.apps import app

FAST = WorkerOptions(max_poll_interval_seconds=0.2)


def test_a_new_instance_reads_no_history_and_a_restart_reads_it_once(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    with Worker(app, settings, options=FAST) as worker:
        worker.counter.reset()
        iid = client.schedule_new_orchestration("chain", input=3)
        assert client.wait_for_orchestration_completion(iid, timeout=60).get_output() == 3
        assert worker.counter.reset().get("table.query", 0) == 0

        client.restart_orchestration(iid)  # Generation 1 (its Pending row is in when this returns)
        assert client.wait_for_orchestration_completion(iid, timeout=60).get_output() == 3
        assert worker.counter.reset().get("table.query", 0) == 1  # the old history, to replace
    assert [e.event_type.name for e in client.get_orchestration_history(iid)].count("ExecutionStarted") == 1


def test_a_wrong_guess_conflicts_and_the_start_runs_on_the_stored_history(
    settings: TaskHubSettings, client: DurableClient, hub: TaskHub
) -> None:
    """History without an Instances row (a row deleted by hand): the client sees no instance,
    the worker's guess is wrong, its sentinel insert conflicts, and the redelivered start
    replaces the old generation as any start of a finished instance does."""
    with Worker(app, settings, options=FAST):
        iid = client.schedule_new_orchestration("chain", input=2, instance_id="reused")
        assert client.wait_for_orchestration_completion(iid, timeout=60).get_output() == 1
        assert hub.instances.delete(iid)
        client.schedule_new_orchestration("chain", input=4, instance_id="reused")
        second = client.wait_for_orchestration_completion(iid, timeout=60)
    assert second.get_output() == 6
    events = client.get_orchestration_history(iid)
    assert [e.event_type.name for e in events].count("ExecutionStarted") == 1


def test_a_late_message_leaves_the_pending_row_of_a_new_start_alone(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    """A finished instance started again (a Pending row with the new ExecutionId, its start
    scheduled for later) gets a message for the old generation first: the row is ahead of the
    history, not behind it, and is not "repaired" back to the old generation's status."""
    unchecked = settings.model_copy(update={"throw_status_exceptions_on_raise_event": False})
    with Worker(app, settings, options=FAST), DurableClient(unchecked) as sender:
        iid = client.schedule_new_orchestration("chain", input=2, instance_id="again")
        assert client.wait_for_orchestration_completion(iid, timeout=60).get_output() == 1
        client.schedule_new_orchestration(
            "chain", input=4, instance_id="again", start_at=datetime.now(UTC) + timedelta(seconds=3)
        )
        sender.raise_orchestration_event(iid, "late")  # discarded: the instance has finished
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.get_output() == 6
