"""What one caller can make a worker hold in memory is bounded (issue 10, item 9).

A large-message blob that inflates beyond ``max_decompressed_bytes`` is a malformed message
(poison at its first dequeue, never inflated whole); a message dequeued past the limit is
poisoned without downloading its blob; an activity result over ``max_payload_bytes`` fails its
task with ``PayloadTooLargeError`` instead of becoming a message no worker may read.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.storage.queue import QueueClient

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import partition_index
from tests.reliability.test_bad_messages import check_poisoned, poisoned

pytestmark = pytest.mark.azurite
MiB = 1024 * 1024

app = dh.App()


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.activity
def big(ctx: dh.ActivityContext, size: int) -> str:
    return "x" * size


@app.orchestrator
def calls(ctx: dh.OrchestrationContext, spec: dict[str, Any]):
    return (yield ctx.call_activity(spec["activity"], input=spec.get("input")))


@pytest.fixture
def small(settings: TaskHubSettings) -> TaskHubSettings:
    return TaskHubSettings(
        task_hub=settings.task_hub,
        connection_string=settings.connection_string,
        partition_count=settings.partition_count,
        max_payload_bytes=512 * 1024,
        max_decompressed_bytes=2 * MiB,
    )


@pytest.fixture
def client(small: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(small, hub=hub) as durable_client:
        yield durable_client


def _message(instance_id: str, event: ev.HistoryEvent) -> envelope.MessageData:
    target = ev.OrchestrationInstance(instance_id=instance_id)
    return envelope.MessageData(task_message=envelope.TaskMessage(event=event, orchestration_instance=target))


def test_blobs_that_inflate_beyond_the_limit_go_to_poison_and_their_batch_runs(
    small: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    ids = [i for i in (f"near-bomb-{n}" for n in range(60)) if partition_index(i, 4) == 0][:3]
    for iid in ids:
        client.schedule_new_orchestration("calls", input={"activity": "echo", "input": iid}, instance_id=iid)
    container = hub.clients.blob.get_container_client(hub.large_messages.container_name)
    bomb = gzip.compress(b" " * (200 * MiB))  # 200 KiB of gzip
    bad: dict[str, dict[str, str]] = {hub.control_queues[0].name: {}, hub.names.work_item_queue: {}}
    for queue, kind in [
        (hub.control_queues[0].name, "EventRaised"),
        (hub.names.work_item_queue, "TaskScheduled"),
    ]:
        name = f"{ids[0]}/message-bomb-{kind}.json.gz"
        container.upload_blob(name, bomb, overwrite=True)
        body = envelope.encode(envelope.wrapper_for(name))
        bad[queue][body] = "inflates to more than max_decompressed_bytes=2,097,152"
    hub.control_queues[0].send_raw(next(iter(bad[hub.control_queues[0].name])))
    hub.work_items.send_raw(next(iter(bad[hub.names.work_item_queue])))

    with dh.Worker(app, small):
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == iid
        entries = poisoned(hub, 2)
    for queue, bodies in bad.items():
        check_poisoned([e for e in entries if e.record.original_queue == queue], bodies, queue)


def _dequeue_without_reading(settings: TaskHubSettings, queue: str, times: int) -> None:
    """What workers that crashed on a message leave behind: its dequeue count, raised."""
    raw = QueueClient.from_connection_string(settings.connection_string.get_secret_value(), queue)
    with raw:
        for _ in range(times):
            [item] = raw.receive_messages(max_messages=1, visibility_timeout=30)
            raw.update_message(item, pop_receipt=item.pop_receipt, visibility_timeout=0)


def test_a_message_dequeued_past_the_limit_is_poisoned_without_downloading_its_blob(
    small: TaskHubSettings, hub: TaskHub
) -> None:
    options = WorkerOptions(max_dequeue_count=1, max_early_message_dequeues=1)
    payload = json.dumps("y" * 100_000)  # over 45 KiB: the body goes to a blob
    control = hub.control_queue_for("crashes-workers")
    control.send(_message("crashes-workers", ev.EventRaised(name="go", input=payload)))
    hub.work_items.send(_message("crashes-workers", ev.TaskScheduled(event_id=0, name="echo", input=payload)))
    # The worker's receive will be the third: past 1 + 1 for work items (one dequeue over the
    # limit still reads a work item, to tell its instance), and past 1 + 1 hand-backs for control.
    _dequeue_without_reading(small, control.name, 2)
    _dequeue_without_reading(small, hub.names.work_item_queue, 2)

    reads: list[str] = []
    container = hub.large_messages.container_name

    class BlobReads(AsyncHTTPPolicy):  # type: ignore[type-arg]
        def __init__(self, service: str) -> None:
            super().__init__()
            self.service = service

        async def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
            url = request.http_request.url
            if self.service == "blob" and request.http_request.method == "GET" and f"/{container}/" in url:
                reads.append(url)
            return await self.next.send(request)

    with dh.Worker(app, small, options=options, storage_policies=[BlobReads]):
        entries = poisoned(hub, 2)
    assert reads == []
    for entry in entries:
        assert entry.record.dequeue_count == 3
        assert "dequeued 3 times, more than the limit of 2: its large message blob" in entry.record.reason
        assert "was not downloaded" in entry.record.reason


def test_an_activity_result_over_the_limit_fails_its_task(
    small: TaskHubSettings, hub: TaskHub, client: DurableClient
) -> None:
    with dh.Worker(app, small):
        iid = client.schedule_new_orchestration("calls", input={"activity": "big", "input": 600_000})
        state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.runtime_status == dh.OrchestrationStatus.FAILED
    assert state.failure_details is not None and state.failure_details.inner_failure is not None
    cause = state.failure_details.inner_failure
    assert cause.error_type == "durablehub.errors.PayloadTooLargeError"
    assert cause.message.startswith(
        "result of activity 'big' is 600,002 bytes of JSON, more than max_payload_bytes=524,288"
    )
