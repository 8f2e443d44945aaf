"""The poison record format and which messages are foreign to which queue (pure, no storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from durablehub.engine import history as ev
from durablehub.taskhub import envelope, quarantine
from durablehub.taskhub.quarantine import PoisonRecord


def message(event: ev.HistoryEvent, instance_id: str = "i-1") -> envelope.MessageData:
    return envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=event, orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id)
        )
    )


def test_a_record_keeps_the_body_verbatim_and_round_trips() -> None:
    body = '{"$type":"DurableTask.AzureStorage.MessageData","x":"Zürich \\" \\u0000"}'
    record = PoisonRecord(
        body=body,
        reason="dequeued 11 times",
        original_queue="hub-control-01",
        original_message_id="m-1",
        original_inserted_on=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        dequeue_count=11,
        instance_id="i-1",
        event_type="EventRaised",
        poisoned_at=datetime(2026, 1, 2, 4, 0, tzinfo=UTC),
        reported=True,
    )
    text = quarantine.encode(record)
    assert text.startswith('{"$type":"durablehub.PoisonMessage",')
    assert quarantine.decode(text) == record


def test_a_body_that_is_not_a_record_is_described_as_far_as_it_can_be() -> None:
    for text in ["plain text", "[1]", '{"$type":"durablehub.PoisonMessage"}', '{"a":1}']:
        assert quarantine.decode(text) is None
    body = envelope.encode(message(ev.EventRaised(name="go", input="1")))
    assert quarantine.bare(body) == PoisonRecord(
        body=body, reason="", instance_id="i-1", event_type="EventRaised"
    )
    instance_id, event_type, unreadable = quarantine.describe_body("plain text")
    assert (instance_id, event_type) == (None, None) and "neither JSON nor Base64" in (unreadable or "")


def test_only_message_events_belong_on_control_queues() -> None:
    for event in [
        ev.ExecutionStarted(name="o", orchestration_instance=ev.OrchestrationInstance(instance_id="i-1")),
        ev.EventRaised(name="go"),
        ev.TaskCompleted(task_scheduled_id=1),
        ev.TimerFired(timer_id=2, fire_at=datetime.now(UTC)),
        ev.ExecutionTerminated(),
    ]:
        assert quarantine.problem_on_control_queue(message(event)) is None, event
    scheduled = message(ev.TaskScheduled(event_id=0, name="act"))
    assert quarantine.problem_on_control_queue(scheduled) == (
        "a TaskScheduled event is never sent to a control queue"
    )
    assert quarantine.problem_on_work_items(scheduled) is None
    assert "not a TaskScheduled" in (
        quarantine.problem_on_work_items(message(ev.EventRaised(name="x"))) or ""
    )
    no_id = message(ev.EventRaised(name="x"), instance_id="")
    assert quarantine.problem_on_control_queue(no_id) == "its OrchestrationInstance has no InstanceId"
    wrapper = envelope.wrapper_for("i-1/message-x.json.gz")
    assert "wrapper" in (quarantine.problem_on_work_items(wrapper) or "")
    assert json.loads(quarantine.encode(PoisonRecord(body="b", reason="r")))["Body"] == "b"


def test_a_body_that_overflows_or_nests_too_deep_is_described_not_raised() -> None:
    # describe_body runs while a message moves to poison: raising there stopped the move.
    body = envelope.encode(message(ev.EventRaised(event_id=3, name="go", input="1")))
    overflowing = body.replace('"EventId":3', '"EventId":1e999')
    assert overflowing != body
    too_deep = "[" * 20_000 + "]" * 20_000
    assert quarantine.describe_body(overflowing)[2] == (
        "queue message has a malformed field (OverflowError: cannot convert float infinity to integer)"
    )
    assert quarantine.describe_body(too_deep)[2] == "queue message is JSON nested too deeply to read"
    assert quarantine.bare(too_deep).body == too_deep
