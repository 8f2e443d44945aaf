"""Ids from user input: entity names follow the rules of keys, instance ids ``.`` and ``..``
are refused, and no blob name built from an id has a ``.`` or ``..`` path segment (a URL
would resolve it: with a SAS or a token, outside the hub's container; with a key, a 403 that
blames the credentials).

Pure tests of the one place each rule lives, one CLI round trip, and the large-message store
against Azurite for an id with dot segments written by another client.
"""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from durablehub._client_core import check_new_instance_id
from durablehub.cli.main import app
from durablehub.engine import history as ev
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import blob_segments
from durablehub.taskhub.rows import history_blob_name

BAD_PARTS = ["a/b", "a\\b", "a#b", "a?b", "a\nb", "a\x7fb"]


def dot_segments(name: str) -> list[str]:
    return [segment for segment in name.split("/") if segment in (".", "..")]


def large_message(instance_id: str) -> envelope.MessageData:
    return envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.EventRaised(name="go"),
            orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id),
        ),
        activity_id=uuid.UUID("0123456789abcdef0123456789abcdef"),
    )


@pytest.mark.parametrize("name", BAD_PARTS)
def test_entity_names_follow_the_rules_of_keys(name: str) -> None:
    with pytest.raises(
        ValueError, match="entity name .* must not contain '/', '\\\\', '#', '\\?' or control"
    ):
        EntityInstanceId(name, "k")
    with pytest.raises(ValueError, match="entity key .* must not contain"):
        EntityInstanceId("counter", name)
    with pytest.raises(ValueError, match="entity name"):
        EntityInstanceId.of(f"@{name}@k")


def test_valid_entity_ids_are_unchanged() -> None:
    assert str(EntityInstanceId("Counter", "a.b ..")) == "@counter@a.b .."
    assert str(EntityInstanceId(".", "..")) == "@.@.."  # one segment, starting with '@'


@pytest.mark.parametrize("instance_id", [".", ".."])
def test_instance_ids_dot_and_dot_dot_are_refused(instance_id: str) -> None:
    with pytest.raises(ValueError, match=f"instance id '{instance_id}' is not allowed"):
        check_new_instance_id(instance_id)


@pytest.mark.parametrize("instance_id", ["...", ".a", "a.", "a..b"])
def test_other_ids_with_dots_are_fine(instance_id: str) -> None:
    assert check_new_instance_id(instance_id) == instance_id


def test_normal_blob_names_keep_the_reference_format() -> None:
    assert history_blob_name("order-42", "000000000000000A", "TaskCompleted", 0xAB, "Result") == (
        "order-42/history-000000000000000A-TaskCompleted-000000AB-Result.json.gz"
    )
    assert envelope.large_message_blob_name(large_message("a/b.c")) == (
        "a/b.c/message-0123456789abcdef0123456789abcdef-EventRaised.json.gz"
    )
    assert blob_segments("a/b.c/...") == "a/b.c/..."


@pytest.mark.parametrize("instance_id", [".", "..", "a/../b", "./x", "x/.", "../../other-container"])
def test_no_blob_name_has_a_dot_segment(instance_id: str) -> None:
    history = history_blob_name(instance_id, "0000000000000001", "ExecutionStarted", 1, "Input")
    message = envelope.large_message_blob_name(large_message(instance_id))
    assert dot_segments(history) == [] and dot_segments(message) == [], (history, message)
    assert history.endswith("/history-0000000000000001-ExecutionStarted-00000001-Input.json.gz")
    # Distinct ids keep distinct names: '.' and '..' are not folded into each other.
    assert blob_segments(".") != blob_segments("..")


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "hello", "--id", ".."], "instance id '..' is not allowed"),
        (["entity", "get", "a/b", "k"], "entity name 'a/b' must not contain '/'"),
        (["entity", "signal", "a#b", "k", "op"], "entity name 'a#b' must not contain"),
    ],
)
def test_the_cli_says_which_id_is_wrong(args: list[str], message: str) -> None:
    # Refused before any storage request: the connection string points nowhere.
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1:1"}
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"error: {result.output.strip()[7:]}"]
    assert message in result.output


@pytest.mark.azurite
def test_large_messages_of_an_id_with_dot_segments_stay_in_the_container(hub: TaskHub) -> None:
    # Another client may have written such an id (durablehub's own clients refuse '/').
    instance_id = "x/../y"
    name = envelope.large_message_blob_name(large_message(instance_id))
    hub.large_messages.upload(name, "payload")
    assert hub.large_messages.download(name) == "payload"
    assert hub.large_messages.list_instance_blobs(instance_id) == [name]
    assert hub.large_messages.blob_name_from_url(hub.large_messages.url(name)) == name
    hub.large_messages.delete(name)
    assert hub.large_messages.list_instance_blobs(instance_id) == []


def test_an_entity_written_by_another_client_against_the_rules_is_left_out_of_listings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from durablehub._entity_client_core import metadata_from_row
    from durablehub.entities.messages import EntityStatus
    from durablehub.taskhub.names import escape_partition_key

    status = EntityStatus(entity_exists=True).to_json()
    good = {"PartitionKey": escape_partition_key("@cart@k"), "RowKey": "", "CustomStatus": status}
    foreign = {**good, "PartitionKey": escape_partition_key("@a/b@k")}
    meta = metadata_from_row(good, include_state=False)
    assert meta is not None and str(meta.id) == "@cart@k"
    assert metadata_from_row(foreign, include_state=False) is None
    assert "leaving '@a/b@k' out of the entities: entity name 'a/b' must not contain" in caplog.text
