"""One bad message never takes its batch down (issue 10, item 8).

A message that cannot be read -- a number that overflows, JSON nested too deeply, a
large-message blob that is not gzip or does not exist -- is marked as unreadable where it is
read and goes to ``{hub}-poison`` on its first dequeue, while the good messages that came in
the same receive are processed at once, on a control queue and on the work-item queue alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.runtime.activities import ActivityRunner
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import partition_index
from durablehub.taskhub.poison import PoisonEntry
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def _body(instance_id: str, event: ev.HistoryEvent) -> str:
    target = ev.OrchestrationInstance(instance_id=instance_id)
    return envelope.encode(
        envelope.MessageData(task_message=envelope.TaskMessage(event=event, orchestration_instance=target))
    )


def bad_bodies(hub: TaskHub, instance_id: str, event: ev.HistoryEvent) -> dict[str, str]:
    """Bodies that made ``receive`` raise, each with a word its poison reason must contain."""
    container = hub.clients.blob.get_container_client(hub.large_messages.container_name)
    kind = event.event_type.name
    not_gzip, missing = (f"{instance_id}/message-{what}-{kind}.json.gz" for what in ("not-gzip", "missing"))
    container.upload_blob(not_gzip, b"not gzip", overwrite=True)
    overflowing = _body(instance_id, event).replace(f'"EventId":{event.event_id}', '"EventId":1e999')
    assert overflowing != _body(instance_id, event)
    return {
        overflowing: "OverflowError",
        '{"$type":"DurableTask.AzureStorage.MessageData","TaskMessage":'
        + "[" * 20_000
        + "]" * 20_000
        + "}": "nested too deeply",
        envelope.encode(envelope.wrapper_for(not_gzip)): "not gzip",
        envelope.encode(envelope.wrapper_for(missing)): "does not exist",
    }


def poisoned(hub: TaskHub, count: int) -> list[PoisonEntry]:
    deadline = time.monotonic() + 30
    while len(entries := hub.poison.entries(hold=timedelta(seconds=10))) < count:
        hub.poison.release(entries)
        assert time.monotonic() < deadline, [e.record.reason for e in entries]
        time.sleep(0.5)
    hub.poison.release(entries)
    return entries


def check_poisoned(entries: list[PoisonEntry], bad: dict[str, str], queue: str) -> None:
    by_body = {e.record.body: e.record for e in entries}
    assert set(by_body) == set(bad)  # the bad ones, each once, verbatim; none of the good ones
    for body, why in bad.items():
        record = by_body[body]
        assert why in record.reason, (why, record.reason)
        assert record.original_queue == queue and record.dequeue_count == 1  # at its first dequeue


@pytest.fixture
def client(settings: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(settings, hub=hub) as durable_client:
        yield durable_client


def test_bad_control_messages_go_to_poison_and_their_batch_runs_at_once(
    settings: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    ids = [i for i in (f"neighbour-{n}" for n in range(60)) if partition_index(i, 4) == 2][:5]
    control = hub.control_queues[2]
    # One batch: the starts and the bad messages are all waiting before the worker starts.
    for iid in ids:
        client.schedule_new_orchestration("chain", input=2, instance_id=iid)
    bad = bad_bodies(hub, ids[0], ev.EventRaised(event_id=7, name="x", input="1"))
    for body in bad:
        control.send_raw(body)

    with dh.Worker(app, settings):
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 1
        check_poisoned(poisoned(hub, len(bad)), bad, control.name)
    assert control.approximate_count() == 0


def test_bad_work_items_go_to_poison_and_their_batch_runs_at_once(
    settings: TaskHubSettings, hub: TaskHub, client: DurableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"fan-{n}" for n in range(5)]
    for iid in ids:
        client.schedule_new_orchestration("chain", input=2, instance_id=iid)
    # A worker that runs no activities: the work items of the first step wait in the queue.
    monkeypatch.setattr(ActivityRunner, "start", lambda self: None)
    monkeypatch.setattr(ActivityRunner, "reserve_slot", lambda self: False)
    with dh.Worker(app, settings):
        deadline = time.monotonic() + 30
        while hub.work_items.approximate_count() < len(ids):
            assert time.monotonic() < deadline, "the work items of the first step"
            time.sleep(0.2)
    monkeypatch.undo()
    bad = bad_bodies(hub, ids[0], ev.TaskScheduled(event_id=0, name="echo", input="1"))
    for body in bad:
        hub.work_items.send_raw(body)

    with dh.Worker(app, settings) as worker:
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 1
        check_poisoned(poisoned(hub, len(bad)), bad, hub.names.work_item_queue)
        assert worker.activities_executed == 2 * len(ids)  # each good work item ran once
    assert hub.work_items.approximate_count() == 0
