"""Pure naming rules: FNV-1a routing, key escaping, row keys."""

from __future__ import annotations

import pytest

from durablehub.taskhub.names import (
    TaskHubNames,
    escape_partition_key,
    fnv1a_32,
    history_row_key,
    partition_index,
    unescape_partition_key,
)


def test_fnv1a_matches_reference_vectors() -> None:
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968
    assert fnv1a_32(b"") == 0x811C9DC5


def test_partition_index_hashes_the_raw_utf8_id() -> None:
    assert partition_index("a", 4) == 0xE40C292C % 4
    assert partition_index("foobar", 16) == 0xBF9CF968 % 16
    assert partition_index("ünïcode", 7) == fnv1a_32("ünïcode".encode()) % 7
    assert partition_index("A", 4) != partition_index("a", 4) or fnv1a_32(b"A") % 4 == fnv1a_32(b"a") % 4


def test_names_follow_the_reference() -> None:
    names = TaskHubNames("MyHub", 12)
    assert names.control_queues[0] == "myhub-control-00"
    assert names.control_queues[11] == "myhub-control-11"
    assert names.work_item_queue == "myhub-workitems"
    assert names.history_table == "MyHubHistory"
    assert names.instances_table == "MyHubInstances"
    assert names.large_messages_container == "myhub-largemessages"
    assert names.leases_container == "myhub-leases"
    assert names.lease_blob("myhub-control-03") == "default/myhub-control-03"
    assert names.control_queue_for("foobar") == f"myhub-control-{0xBF9CF968 % 12:02d}"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain-id", "plain-id"),
        ("a/b", "a^0b"),
        ("a\\b", "a^1b"),
        ("a#b", "a^2b"),
        ("a?b", "a^3b"),
        ("a^b", "a^^b"),
        ("tab\there", "tab^\u00c9here"),
        ("\x7f", "^\u013f"),
        ("@counter@Key", "@counter@Key"),
    ],
)
def test_partition_key_escaping_round_trips(raw: str, escaped: str) -> None:
    assert escape_partition_key(raw) == escaped
    assert unescape_partition_key(escaped) == raw


def test_row_keys_are_sixteen_upper_hex_digits() -> None:
    assert history_row_key(0) == "0000000000000000"
    assert history_row_key(10) == "000000000000000A"
    assert history_row_key(255) == "00000000000000FF"
