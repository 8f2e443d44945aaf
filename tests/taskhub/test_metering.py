"""The request counter sees every storage call by operation, sync and async."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durablehub.engine import history as ev
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.metering import RequestCounter, classify

pytestmark = pytest.mark.azurite


def test_queue_round_trip_is_three_requests(hub: TaskHub) -> None:
    msg = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.EventRaised(name="e"), orchestration_instance=ev.OrchestrationInstance(instance_id="m")
        )
    )
    hub.counter.reset()
    hub.work_items.send(msg)
    [got] = hub.work_items.receive(visibility_timeout=timedelta(seconds=30))
    hub.work_items.delete_message(got)
    assert hub.counter.reset() == {"queue.send": 1, "queue.receive": 1, "queue.delete_message": 1}


async def test_async_history_commit_and_load_are_counted(async_hub: AsyncTaskHub) -> None:
    async_hub.counter.reset()
    await async_hub.history.commit(
        "c", "e", [ev.OrchestratorStarted()], first_sequence_number=0, sentinel_etag=None
    )
    await async_hub.history.load("c")
    assert async_hub.counter.reset() == {"table.batch": 1, "table.query": 1}


def test_classify_names_rest_calls() -> None:
    assert classify("queue", "GET", "http://h/acct/q/messages?numofmessages=32") == "queue.receive"
    assert classify("queue", "GET", "http://h/acct/q/messages?peekonly=true") == "queue.peek"
    assert classify("queue", "PUT", "http://h/acct/q/messages/abc?popreceipt=x") == "queue.update_message"
    assert classify("table", "POST", "http://h/acct/$batch") == "table.batch"
    assert classify("table", "PATCH", "http://h/acct/T(PartitionKey='a',RowKey='')") == "table.upsert_merge"
    assert classify("blob", "PUT", "http://h/acct/c/b?comp=lease") == "blob.lease"
    assert classify("blob", "PUT", "http://h/acct/c?restype=container") == "blob.create_container"


def test_counter_is_shared_and_resettable() -> None:
    counter = RequestCounter()
    counter.record("queue.send")
    counter.record("queue.send")
    assert counter.total == 2 and counter.reset() == {"queue.send": 2} and counter.total == 0
