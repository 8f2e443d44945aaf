"""``durablehub poison list|requeue`` against Azurite: messages put in poison the way workers
put them there (``TaskHub.quarantine``), listed, refused with a reason, and requeued byte for
byte to the queue they came from, where a worker then processes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.storage.queue import QueueClient
from typer.testing import CliRunner

import durablehub as dh
from durablehub.cli.main import app
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from tests.e2e.apps import app as e2e_app

pytestmark = pytest.mark.azurite
runner = CliRunner()
HOLD = timedelta(seconds=30)


@pytest.fixture
def env(hub: TaskHub) -> Iterator[dict[str, str]]:
    yield {
        "AzureWebJobsStorage": hub.settings.connection_string.get_secret_value(),
        "DURABLEHUB_TASK_HUB": hub.settings.task_hub,
    }


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["poison", *args], env=env)
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output
        assert result.output.strip().splitlines()[-1].startswith("error: ")
    return result.output


def peek_bodies(hub: TaskHub, queue: str) -> list[str]:
    raw = QueueClient.from_connection_string(hub.settings.connection_string.get_secret_value(), queue)
    return [m.content for m in raw.peek_messages(max_messages=32)]


def test_an_empty_or_missing_poison_queue(env: dict[str, str]) -> None:
    assert "no poison messages in " in cli(env, "list")
    assert json.loads(cli(env, "list", "--json")) == []
    assert "name the poison messages to requeue" in cli(env, "requeue", code=1)
    assert "or --all" in cli(env, "requeue", "abc", "--all", code=1)


def test_list_then_requeue_and_the_instance_runs(env: dict[str, str], hub: TaskHub) -> None:
    with DurableClient(hub.settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("hello_cities", instance_id="poisoned-start")
        control = hub.control_queue_for(iid)
        [start] = control.receive(visibility_timeout=HOLD)
        original = start.body
        assert hub.quarantine(control, start, reason="its episode crashed the worker")
        hub.poison.send_raw("left here by another tool")  # a bare body, no record

        listed = json.loads(cli(env, "list", "--json"))
        assert len(listed) == 2
        [entry] = [e for e in listed if e["instanceId"] == iid]
        assert entry == {
            "messageId": entry["messageId"],
            "insertedTime": entry["insertedTime"],
            "dequeueCount": 1,
            "instanceId": iid,
            "eventType": "ExecutionStarted",
            "originalQueue": control.name,
            "originalMessageId": start.message_id,
            "originalInsertedTime": entry["originalInsertedTime"],
            "reason": "its episode crashed the worker",
            "instanceWasTold": False,
        }
        [bare] = [e for e in listed if e["instanceId"] is None]
        assert bare["originalQueue"] is None and bare["reason"] is None and bare["dequeueCount"] is None
        text = cli(env, "list")
        assert text.splitlines()[0].split() == [
            "MESSAGE",
            "ID",
            "POISONED",
            "(UTC)",
            "DEQUEUES",
            "INSTANCE",
            "EVENT",
            "QUEUE",
            "REASON",
        ]
        assert f"{iid}  ExecutionStarted  {control.name}  its episode crashed the worker" in text

        # Bad ids and unreadable bodies are refused by name; nothing is lost.
        out = cli(env, "requeue", "no-such-id", bare["messageId"], code=1)
        assert "error: no poison message 'no-such-id' in " in out
        assert f"{bare['messageId']} was not requeued: the message is unreadable" in out
        assert "its queue is not recorded" in cli(env, "requeue", bare["messageId"], "--force", code=1)
        assert len(json.loads(cli(env, "list", "--json"))) == 2
        assert control.approximate_count() == 0

        out = cli(env, "requeue", entry["messageId"])
        assert out.strip() == f"requeued {entry['messageId']} to {control.name}"
        assert peek_bodies(hub, control.name) == [original]  # exactly what the client sent
        assert [e["messageId"] for e in json.loads(cli(env, "list", "--json"))] == [bare["messageId"]]

        with dh.Worker(e2e_app, hub.settings):
            state = client.wait_for_orchestration_completion(iid, timeout=30)
        assert state.runtime_status == dh.OrchestrationStatus.COMPLETED
        assert state.get_output() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_a_large_body_is_kept_in_a_blob_and_restored_exactly(env: dict[str, str], hub: TaskHub) -> None:
    # 40 KiB of quotes: a valid queue body that JSON escaping doubles past the queue limit.
    body = '"' * 40_000
    hub.work_items.send_raw(body)
    [item] = hub.work_items.receive(visibility_timeout=HOLD)
    assert item.error is not None
    assert hub.quarantine(hub.work_items, item, reason="unreadable")
    [poisoned] = peek_bodies(hub, hub.names.poison_queue)
    assert len(poisoned) < 1000 and '"BodyBlobName":"' in poisoned

    [entry] = json.loads(cli(env, "list", "--json"))
    assert entry["originalQueue"] == hub.names.work_item_queue and entry["eventType"] is None
    assert "it would come straight back" in cli(env, "requeue", "--all", code=1)
    out = cli(env, "requeue", "--all", "--force")
    assert out.strip() == f"requeued {entry['messageId']} to {hub.names.work_item_queue}"
    assert peek_bodies(hub, hub.names.work_item_queue) == [body]
    assert json.loads(cli(env, "list", "--json")) == []
    assert hub.large_messages.list_instance_blobs(hub.names.poison_queue) == []


def poison_many(hub: TaskHub, count: int) -> list[str]:
    """``count`` unreadable work items, poisoned as a worker poisons them; their bodies."""
    bodies = [f"not a message {i:03d}" for i in range(count)]
    for body in bodies:
        hub.work_items.send_raw(body)
    moved = 0
    while moved < count:
        for item in hub.work_items.receive(visibility_timeout=HOLD):
            assert hub.quarantine(hub.work_items, item, reason=f"unreadable: {item.body}")
            moved += 1
    return bodies


def test_list_peeks_32_says_how_many_more_and_requeue_takes_them_all(
    env: dict[str, str], hub: TaskHub
) -> None:
    bodies = poison_many(hub, 40)
    result = runner.invoke(app, ["poison", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    # Azure peeks at most 32 messages: the oldest are shown, the rest counted.
    assert [e["reason"] for e in listed] == [f"unreadable: {b}" for b in bodies[:32]]
    assert "the oldest 32 of about 40 poison messages" in result.stderr
    text = runner.invoke(app, ["poison", "list"], env=env)
    assert text.exit_code == 0 and len(text.stdout.strip().splitlines()) == 1 + 32
    assert "the oldest 32 of about 40 poison messages" in text.stderr

    # Listing only peeked: no message was dequeued (each is received now for the first time)
    # and none was hidden (all 40 are there to receive).
    received = hub.poison.receive(max_messages=32, visibility_timeout=HOLD)
    received += hub.poison.receive(max_messages=32, visibility_timeout=HOLD)
    assert len(received) == 40 and {m.dequeue_count for m in received} == {1}
    for message in received:
        hub.poison.update_visibility(message, timedelta(0))

    # Past the first 32: the 40th is requeued by its id, then --all takes the 39 others.
    last = received[-1].message_id
    assert cli(env, "requeue", last, "--force").strip() == f"requeued {last} to {hub.names.work_item_queue}"
    out = cli(env, "requeue", "--all", "--force")
    assert len(out.strip().splitlines()) == 39 and last not in out
    assert hub.work_items.approximate_count() == 40 and hub.poison.approximate_count() == 0
    assert json.loads(cli(env, "list", "--json")) == []
