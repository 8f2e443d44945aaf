"""Control and work-item queues against Azurite: raw bodies, large messages, visibility, bad input."""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
import tracemalloc
from datetime import timedelta

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy
from azure.storage.queue import QueueClient

from durablehub.engine import history as ev
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub

pytestmark = pytest.mark.azurite
TARGET = ev.OrchestrationInstance(instance_id="q-1", execution_id="e1")


def message(payload: str = '"x"') -> envelope.MessageData:
    return envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.TaskScheduled(event_id=0, name="Act", input=payload), orchestration_instance=TARGET
        )
    )


def raw_queue(hub: TaskHub, name: str) -> QueueClient:
    return QueueClient.from_connection_string(hub.settings.connection_string.get_secret_value(), name)


def test_body_is_raw_utf8_json_and_round_trips(hub: TaskHub) -> None:
    sent = message('{"city":"Zürich"}')
    hub.work_items.send(sent)
    peeked = raw_queue(hub, hub.names.work_item_queue).peek_messages(max_messages=1)[0]
    assert peeked.content.startswith('{"$type":"DurableTask.AzureStorage.MessageData"')
    assert "Zürich" in peeked.content
    [received] = hub.work_items.receive(visibility_timeout=timedelta(seconds=30))
    assert received.message == sent and received.error is None and received.dequeue_count == 1
    assert hub.work_items.delete_message(received) is True
    assert hub.work_items.delete_message(received) is False  # already gone: not an error
    assert hub.work_items.receive(visibility_timeout=timedelta(seconds=30)) == []


def test_messages_over_45_kib_go_to_a_gzip_blob(hub: TaskHub) -> None:
    big = json.dumps("y" * 60_000)
    sent = message(big)
    hub.control_queues[0].send(sent)
    peeked = json.loads(raw_queue(hub, hub.names.control_queues[0]).peek_messages(max_messages=1)[0].content)
    assert peeked["TaskMessage"] is None and peeked["ActivityId"] == "00000000-0000-0000-0000-000000000000"
    assert peeked["CompressedBlobName"] == f"q-1/message-{sent.activity_id.hex}-TaskScheduled.json.gz"
    [received] = hub.control_queues[0].receive(visibility_timeout=timedelta(seconds=30))
    assert received.message is not None and received.message.event.input == big
    assert received.message.compressed_blob_name == peeked["CompressedBlobName"]
    assert hub.large_messages.list_instance_blobs("q-1") == [peeked["CompressedBlobName"]]


def test_base64_bodies_from_v1_workers_are_read(hub: TaskHub) -> None:
    sent = message()
    body = base64.b64encode(envelope.encode(sent).encode()).decode()
    hub.control_queues[1].send_raw(body)
    [received] = hub.control_queues[1].receive(visibility_timeout=timedelta(seconds=30))
    assert received.message == sent


def test_malformed_message_is_returned_with_its_error_not_raised(hub: TaskHub) -> None:
    q = hub.control_queues[2]
    q.send_raw("this is not a durable task message")
    q.send(message())
    received = q.receive(visibility_timeout=timedelta(seconds=30))
    bad = [r for r in received if r.error is not None]
    good = [r for r in received if r.message is not None]
    assert len(bad) == 1 and len(good) == 1
    assert (
        "neither JSON nor Base64" in str(bad[0].error) and bad[0].body == "this is not a durable task message"
    )


def test_timer_messages_stay_invisible_until_due_and_renewal_extends(hub: TaskHub) -> None:
    q = hub.control_queues[3]
    q.send(message(), visible_after=timedelta(seconds=2))
    assert q.receive(visibility_timeout=timedelta(seconds=30)) == []
    time.sleep(2.5)
    [received] = q.receive(visibility_timeout=timedelta(seconds=1))
    renewed = q.update_visibility(received, timedelta(seconds=30))
    assert renewed.pop_receipt != received.pop_receipt
    time.sleep(1.5)
    assert q.receive(visibility_timeout=timedelta(seconds=30)) == []  # still ours after the renewal
    assert q.delete_message(renewed)


def test_delays_over_six_days_are_refused() -> None:
    from durablehub.taskhub.queues import _seconds

    with pytest.raises(ValueError, match="chain shorter timers"):
        _seconds(timedelta(days=6, seconds=1))


def test_one_receive_is_one_request(hub: TaskHub) -> None:
    for _ in range(3):
        hub.work_items.send(message())
    before = hub.counter.snapshot()
    got = hub.work_items.receive(max_messages=32, visibility_timeout=timedelta(seconds=30))
    after = hub.counter.snapshot()
    assert len(got) == 3
    assert after.get("queue.receive", 0) - before.get("queue.receive", 0) == 1


def test_a_held_send_is_invisible_and_can_be_renewed_and_deleted_with_its_receipt(hub: TaskHub) -> None:
    queue = hub.control_queues[1]
    sent = message(json.dumps("z" * 60_000))  # offloaded: the held copy keeps the full message
    held = queue.send_held(sent, hold=timedelta(seconds=2))
    assert held.dequeue_count == 0 and held.message is not None and held.message.event == sent.event
    assert held.message.compressed_blob_name == f"q-1/message-{sent.activity_id.hex}-TaskScheduled.json.gz"
    assert queue.receive(visibility_timeout=timedelta(seconds=30)) == []  # nobody else sees it
    renewed = queue.update_visibility(held, timedelta(seconds=30))
    assert queue.delete_message(renewed) is True
    assert queue.receive(visibility_timeout=timedelta(seconds=30)) == []


def test_a_held_message_that_is_never_consumed_becomes_visible_when_its_hold_ends(hub: TaskHub) -> None:
    queue = hub.control_queues[2]
    held = queue.send_held(message(), hold=timedelta(seconds=1))
    time.sleep(1.5)  # the process that sent it died: the next owner receives it
    [received] = queue.receive(visibility_timeout=timedelta(seconds=30))
    assert received.message_id == held.message_id and received.dequeue_count == 1


def _put_blob(hub: TaskHub, name: str, data: bytes) -> None:
    container = hub.clients.blob.get_container_client(hub.large_messages.container_name)
    container.upload_blob(name, data, overwrite=True)


def test_any_failure_to_read_one_message_marks_that_message_and_spares_its_batch(hub: TaskHub) -> None:
    q = hub.control_queues[0]
    overflowing = envelope.encode(message()).replace('"EventId":0', '"EventId":1e999')
    too_deep = '{"TaskMessage":' + "[" * 20_000 + "]" * 20_000 + "}"
    _put_blob(hub, "q-1/message-not-gzip-TaskScheduled.json.gz", b"plain bytes, not gzip")
    _put_blob(hub, "q-1/message-not-utf8-TaskScheduled.json.gz", gzip.compress(b"\xff\xfe\x00"))
    _put_blob(hub, "q-1/message-empty-TaskScheduled.json.gz", b"")
    _put_blob(hub, "q-1/message-cut-TaskScheduled.json.gz", gzip.compress(b'"abc"' * 1000)[:-30])
    bad = {
        overflowing: "OverflowError",
        too_deep: "nested too deeply",
        envelope.encode(envelope.wrapper_for("q-1/message-not-gzip-TaskScheduled.json.gz")): "not gzip",
        envelope.encode(envelope.wrapper_for("q-1/message-not-utf8-TaskScheduled.json.gz")): "not UTF-8",
        envelope.encode(envelope.wrapper_for("q-1/message-missing-TaskScheduled.json.gz")): "does not exist",
        envelope.encode(envelope.wrapper_for("q-1/message-empty-TaskScheduled.json.gz")): "is empty",
        envelope.encode(envelope.wrapper_for("q-1/message-cut-TaskScheduled.json.gz")): "gzip cut short",
    }
    good = message()
    for body in bad:
        q.send_raw(body)
    q.send(good)

    received = q.receive(visibility_timeout=timedelta(seconds=30))  # raised before, dropping them all

    assert len(received) == len(bad) + 1
    assert [r.message for r in received if r.error is None] == [good]
    errors = {r.body: str(r.error) for r in received if r.error is not None}
    assert errors.keys() == bad.keys()
    for body, why in bad.items():
        assert why in errors[body], (why, errors[body])


class _BlobReadsFail(HTTPPolicy):  # type: ignore[type-arg]
    """The blob service cannot be reached for reads (an outage of one service)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        if self.service == "blob" and request.http_request.method == "GET":
            raise ServiceRequestError("blob service unreachable (injected)")
        return self.next.send(request)


def test_a_blob_that_cannot_be_fetched_for_a_storage_fault_leaves_its_message_for_later(hub: TaskHub) -> None:
    q = hub.control_queues[1]
    big = message(json.dumps("b" * 60_000))
    small = message()
    q.send(big)
    q.send(small)
    flaky = hub.settings.model_copy(update={"retry_total": 0})
    with TaskHub(flaky, policies=[_BlobReadsFail]) as faulty:
        got = faulty.control_queues[1].receive(visibility_timeout=timedelta(seconds=1))
        assert [r.message for r in got] == [small]  # not marked unreadable: not the message's fault
        assert faulty.control_queues[1].delete_message(got[0])
    time.sleep(1.5)  # it comes back, and reads fine once blobs can be read again
    [again] = q.receive(visibility_timeout=timedelta(seconds=30))
    assert again.error is None and again.message is not None and again.dequeue_count == 2
    assert again.message.event == big.event


MiB = 1024 * 1024


def test_a_blob_is_never_inflated_beyond_max_decompressed_bytes(hub: TaskHub) -> None:
    # 100 MiB of spaces is 100 KiB of gzip: read whole, it would take 100 MiB (200 as text).
    _put_blob(hub, "q-1/message-bomb-TaskScheduled.json.gz", gzip.compress(b" " * (100 * MiB)))
    incompressible = random.Random(7).randbytes(2 * MiB)
    _put_blob(hub, "q-1/message-dense-TaskScheduled.json.gz", gzip.compress(incompressible))
    dense = len(gzip.compress(incompressible))
    capped = hub.settings.model_copy(update={"max_decompressed_bytes": MiB})
    with TaskHub(capped) as small:
        q = small.control_queues[3]
        for kind in ("bomb", "dense"):
            q.send_raw(envelope.encode(envelope.wrapper_for(f"q-1/message-{kind}-TaskScheduled.json.gz")))
        good = message()
        q.send(good)
        tracemalloc.start()
        try:
            received = q.receive(visibility_timeout=timedelta(seconds=30))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    errors = sorted(str(r.error) for r in received if r.error is not None)
    assert errors == [
        "large message blob 'q-1/message-bomb-TaskScheduled.json.gz' inflates to more than "
        "max_decompressed_bytes=1,048,576 (DURABLEHUB_MAX_DECOMPRESSED_BYTES)",
        f"large message blob 'q-1/message-dense-TaskScheduled.json.gz' is {dense:,} bytes compressed, "
        "more than max_decompressed_bytes=1,048,576 (DURABLEHUB_MAX_DECOMPRESSED_BYTES)",
    ]
    assert [r.message for r in received if r.error is None] == [good]
    assert peak < 16 * MiB, f"{peak:,} bytes allocated while reading"


def test_a_message_over_the_dequeue_limit_is_marked_without_downloading_its_blob(hub: TaskHub) -> None:
    q = hub.control_queues[2]
    sent = message(json.dumps("z" * 60_000))
    q.send(sent)
    [first] = q.receive(visibility_timeout=timedelta(seconds=1), max_dequeue_count=1)
    assert first.error is None and first.message is not None and first.message.event == sent.event
    time.sleep(1.5)
    before = hub.counter.snapshot().get("blob.download", 0)
    [second] = q.receive(visibility_timeout=timedelta(seconds=30), max_dequeue_count=1)
    assert hub.counter.snapshot().get("blob.download", 0) == before  # its blob was not fetched
    assert second.message is None and str(second.error) == (
        f"dequeued 2 times, more than the limit of 1: its large message blob "
        f"'q-1/message-{sent.activity_id.hex}-TaskScheduled.json.gz' was not downloaded"
    )


def test_the_oldest_visible_message_is_peeked_without_hiding_it(hub: TaskHub) -> None:
    assert hub.work_items.oldest_visible() is None
    hub.work_items.send(message('"timer"'), visible_after=timedelta(seconds=60))  # invisible: not seen
    assert hub.work_items.oldest_visible() is None
    hub.work_items.send(message('"first"'))
    hub.work_items.send(message('"second"'))
    first = hub.work_items.oldest_visible()
    assert first is not None and first.tzinfo is not None
    assert hub.work_items.oldest_visible() == first  # a peek hides nothing and counts no dequeue
    [received] = hub.work_items.receive(visibility_timeout=timedelta(seconds=30), max_messages=1)
    assert received.message.task_message is not None and received.dequeue_count == 1
    assert received.message.task_message.event.input == '"first"'
