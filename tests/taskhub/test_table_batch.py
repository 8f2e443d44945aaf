"""durablehub's table transactions against Azurite: the rows, ETags and errors are those of the
tables SDK's ``submit_transaction``, and a sync transaction starts no thread (azure-core's
multipart support starts a thread pool for every transaction, the bulk of a purge's CPU)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient as AsyncTableClient

from durablehub.engine import history as ev
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import batch_wire
from durablehub.taskhub.aio.table_batch import submit_transaction as async_submit
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.table_batch import submit_transaction

pytestmark = pytest.mark.azurite

# Every property type durablehub writes (rows.py, the Instances row), and the awkward values.
EVERY_TYPE: dict[str, Any] = {
    "Text": "plain",
    "Quotes": 'it\'s "quoted"\r\nand a new line\ttab \\ slash',
    "Unicode": "ümlaut ✓ 𝄞 \u0000 end",
    "Empty": "",
    "JsonNull": "null",
    "Json": json.dumps({"a": [1, 2.5, None, "x"]}),
    "Int": 7,
    "Negative": -2147483648,
    "Large": (2**40, "Edm.Int64"),
    "Flag": True,
    "Off": False,
    "Real": 1.25,
    "When": datetime(2026, 11, 30, 4, 5, 6, 123456, tzinfo=UTC),
    "Naive": datetime(2026, 1, 2, 3, 4, 5),
    "Bytes": b"\x00\x01\xfe",
    "Missing": None,
}
KEYS = ["plain", "it's", "a b%c", "ünï", "@entity@key", "x'' y"]


@pytest.fixture
def tables(settings: TaskHubSettings) -> Iterator[tuple[TableClient, TableClient]]:
    """Two empty tables: one written by the SDK, one by durablehub."""
    service = TableServiceClient.from_connection_string(_conn(settings))
    names = [f"Tx{uuid.uuid4().hex[:12]}", f"Tx{uuid.uuid4().hex[:12]}"]
    clients = [service.create_table(name) for name in names]
    yield clients[0], clients[1]
    for name in names:
        service.delete_table(name)
    service.close()


def _rows(table: TableClient) -> list[dict[str, Any]]:
    """Rows as the service stores them: values and Edm types (full metadata), no timestamps."""
    pages: list[str] = []
    list(
        table.query_entities(
            "PartitionKey ne ''",
            headers={"Accept": "application/json;odata=fullmetadata"},
            raw_response_hook=lambda r: pages.append(r.http_response.text()),
        )
    )
    found = [row for page in pages for row in json.loads(page)["value"]]
    skip = ("odata.", "Timestamp")
    return sorted(
        ({k: v for k, v in row.items() if not k.startswith(skip)} for row in found),
        key=lambda r: (r["PartitionKey"], r["RowKey"]),
    )


def test_every_property_type_and_key_is_written_as_the_sdk_writes_it(
    tables: tuple[TableClient, TableClient],
) -> None:
    sdk, ours = tables
    for key in KEYS:
        ops = [
            ("create", {"PartitionKey": key, "RowKey": "a", **EVERY_TYPE}),
            ("upsert", {"PartitionKey": key, "RowKey": key, **EVERY_TYPE}, {"mode": UpdateMode.REPLACE}),
            ("upsert", {"PartitionKey": key, "RowKey": "m", "Int": 1}, {"mode": UpdateMode.MERGE}),
        ]
        sdk.submit_transaction(ops)
        assert [set(r) for r in submit_transaction(ours, ops)] == [{"etag"}] * 3
    assert _rows(ours) == _rows(sdk)
    read = ours.get_entity("it's", "it's")
    assert read["Unicode"] == EVERY_TYPE["Unicode"] and read["When"] == EVERY_TYPE["When"]
    assert read["Bytes"] == EVERY_TYPE["Bytes"] and "Missing" not in read


def test_guarded_updates_and_deletes_return_the_new_etags(tables: tuple[TableClient, TableClient]) -> None:
    _, table = tables
    pk = "guarded'pk"
    [created] = submit_transaction(table, [("create", {"PartitionKey": pk, "RowKey": "s", "N": 1})])
    assert created["etag"] == table.get_entity(pk, "s").metadata["etag"]
    guard = {"etag": created["etag"], "match_condition": MatchConditions.IfNotModified}
    result = submit_transaction(
        table,
        [
            ("upsert", {"PartitionKey": pk, "RowKey": "e1", "V": "x"}, {"mode": UpdateMode.REPLACE}),
            ("update", {"PartitionKey": pk, "RowKey": "s", "N": 2}, {"mode": UpdateMode.MERGE, **guard}),
        ],
    )
    sentinel = table.get_entity(pk, "s")
    assert result[1]["etag"] == sentinel.metadata["etag"] and sentinel["N"] == 2
    with pytest.raises(TableTransactionError) as stale:  # the ETag moved: 412, nothing written
        submit_transaction(
            table,
            [
                ("delete", {"PartitionKey": pk, "RowKey": "e1"}),
                ("delete", {"PartitionKey": pk, "RowKey": "s"}, guard),
            ],
        )
    assert (stale.value.status_code, stale.value.index) == (412, 1)
    assert table.get_entity(pk, "e1")["V"] == "x"
    now = {"etag": result[1]["etag"], "match_condition": MatchConditions.IfNotModified}
    assert submit_transaction(
        table,
        [
            ("delete", {"PartitionKey": pk, "RowKey": "e1"}),
            ("delete", {"PartitionKey": pk, "RowKey": "s"}, now),
        ],
    ) == [{}, {}]
    assert list(table.list_entities()) == []


def _failure(call: Any) -> tuple[type, int | None, Any, int | None]:
    try:
        call()
    except HttpResponseError as exc:
        return type(exc), exc.status_code, exc.error_code, getattr(exc, "index", None)
    raise AssertionError("no error")


def test_failures_are_the_errors_the_sdk_raises(
    tables: tuple[TableClient, TableClient], settings: TaskHubSettings
) -> None:
    sdk, ours = tables
    row = {"PartitionKey": "p", "RowKey": "r"}
    for table in tables:
        table.create_entity(row)
    failing = [
        [("upsert", {"PartitionKey": "p", "RowKey": "new"}), ("create", row)],  # exists: 409
        [("delete", {"PartitionKey": "p", "RowKey": "gone"})],  # missing: 404
        [("update", {**row, "X": 1}, {"etag": 'W/"datetime\'2001-01-01T00%3A00%3A00Z\'"',
                                      "match_condition": MatchConditions.IfNotModified})],  # 412
    ]  # fmt: skip
    for ops in failing:
        expected = _failure(lambda ops=ops: sdk.submit_transaction(ops))
        assert expected[0] is TableTransactionError
        assert _failure(lambda ops=ops: submit_transaction(ours, ops)) == expected
    assert _rows(ours) == _rows(sdk)  # nothing of a failed transaction was written
    with TableClient.from_connection_string(_conn(settings), f"Missing{uuid.uuid4().hex[:8]}") as missing:
        expected = _failure(lambda: missing.submit_transaction([("upsert", row)]))
        assert _failure(lambda: submit_transaction(missing, [("upsert", row)])) == expected


def _conn(settings: TaskHubSettings) -> str:
    return settings.connection_string.get_secret_value()  # type: ignore[union-attr]


def test_bad_operations_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="at least one"):
        batch_wire.build("http://h/a", "T", [])
    with pytest.raises(ValueError, match="one partition"):
        batch_wire.build("http://h/a", "T", [("upsert", {"PartitionKey": "a", "RowKey": "1"}),
                                             ("upsert", {"PartitionKey": "b", "RowKey": "1"})])  # fmt: skip
    with pytest.raises(ValueError, match="at most 100"):
        batch_wire.build(
            "http://h/a", "T", [("delete", {"PartitionKey": "a", "RowKey": str(i)}) for i in range(101)]
        )
    with pytest.raises(ValueError, match="unknown"):
        batch_wire.build("http://h/a", "T", [("merge", {"PartitionKey": "a", "RowKey": "1"})])
    with pytest.raises(ValueError, match="with etag"):
        guard_only = {"match_condition": MatchConditions.IfNotModified}
        batch_wire.build("http://h/a", "T", [("delete", {"PartitionKey": "a", "RowKey": "1"}, guard_only)])
    with pytest.raises(ValueError, match="not supported for an Unconditional"):
        batch_wire.build("http://h/a", "T", [("delete", {"PartitionKey": "a", "RowKey": "1"}, {"etag": "x"})])
    with pytest.raises(TypeError):
        batch_wire.build("http://h/a", "T", [("upsert", {"PartitionKey": "a", "RowKey": "1", "X": 2**40})])


async def test_async_transactions_write_the_same(
    tables: tuple[TableClient, TableClient], settings: TaskHubSettings
) -> None:
    sdk, ours = tables
    ops = [("upsert", {"PartitionKey": "async", "RowKey": "1", **EVERY_TYPE}, {"mode": UpdateMode.REPLACE})]
    sdk.submit_transaction(ops)
    async with AsyncTableClient.from_connection_string(_conn(settings), ours.table_name) as table:
        [result] = await async_submit(table, ops)
    assert result["etag"] == ours.get_entity("async", "1").metadata["etag"]
    assert _rows(ours) == _rows(sdk)


def test_a_sync_history_commit_and_purge_start_no_thread(
    hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    etag = hub.history.commit(
        "no-threads", "e1", [ev.OrchestratorStarted(), ev.OrchestratorCompleted()],
        first_sequence_number=0, sentinel_etag=None,
    )  # fmt: skip
    assert etag and len(hub.history.list_rows("no-threads")) == 3
    assert hub.history.delete_instance("no-threads") == 3
    assert hub.history.list_rows("no-threads") == []
    assert started == []
