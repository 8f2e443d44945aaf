"""AsyncHistoryTable: the ``{Hub}History`` table, one partition per instance.

Every commit writes at most 99 event rows plus the ``sentinel`` row in one entity-group
transaction. The sentinel is inserted on an instance's first commit and merged under its
last ETag afterwards, so a worker that lost its partition cannot overwrite a newer history:
its transaction fails with 409/412 and becomes CheckpointConflictError.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, TransactionOperation, UpdateMode

from durablehub.engine import history as ev
from durablehub.errors import CheckpointConflictError
from durablehub.taskhub import on_demand, rows
from durablehub.taskhub.aio.connections import AsyncStorageClients
from durablehub.taskhub.aio.large_messages import AsyncLargeMessageStore
from durablehub.taskhub.aio.table_batch import submit_transaction
from durablehub.taskhub.aio.tables import table_exists
from durablehub.taskhub.names import TaskHubNames, escape_partition_key

MAX_EVENTS_PER_BATCH = 99  # + the sentinel = 100 operations, the service's limit
MAX_BATCH_ESTIMATE_BYTES = 3 * 1024 * 1024  # the reference's estimate; the hard limit is 4 MiB
# What a guarded delete needs of each row: its key, and the sentinel's Timestamp (and ETag).
DELETE_SELECT = ("PartitionKey", "RowKey", "Timestamp")


_RELISTS = 4  # lists of one instance's rows while another purge keeps deleting them


def _is_lost_race(exc: HttpResponseError) -> bool:
    # Azurite answers a duplicate insert with 409 and no error code; the service with
    # EntityAlreadyExists. 412 is UpdateConditionNotSatisfied (the ETag moved); 404 on a
    # guarded sentinel: it was deleted (a purge) since it was read.
    return exc.status_code in (404, 409, 412)


def _etag(entity: Any) -> str:
    """The ETag of a row as the tables SDK returned it (a ``TableEntity``'s metadata)."""
    etag = cast(TableEntity, entity).metadata["etag"]
    assert etag is not None  # every row read from the service has one
    return etag


class AsyncHistoryTable:
    def __init__(
        self, clients: AsyncStorageClients, names: TaskHubNames, large_messages: AsyncLargeMessageStore
    ) -> None:
        self._table = clients.table.get_table_client(names.history_table)
        self.table_name = names.history_table
        self._blobs = large_messages
        self._resource = on_demand.table(names.history_table)  # missing: a hub not yet whole

    async def create(self) -> None:
        try:
            await self._table.create_table()
        except ResourceExistsError:
            pass

    async def delete_table(self) -> None:
        try:
            await self._table.delete_table()
        except ResourceNotFoundError:
            pass

    async def exists(self) -> bool:
        """One request for at most one row's key (``durablehub hub info``)."""
        return await table_exists(self._table, self._resource)

    async def _query(self, filter: str, params: dict[str, Any], select: list[str] | None = None) -> list[Any]:
        """Every row ``filter`` selects; none while the table does not exist."""
        try:
            return [e async for e in self._table.query_entities(filter, parameters=params, select=select)]
        except ResourceNotFoundError as exc:
            if not self._resource.is_missing(exc):
                raise
            return []

    async def load(self, instance_id: str, execution_id: str | None = None) -> rows.HistoryPage:
        """The current generation's events (or ``execution_id``'s) and the sentinel's ETag."""
        pk = escape_partition_key(instance_id)
        if execution_id is None:
            query = "PartitionKey eq @pk"
            params: dict[str, Any] = {"pk": pk}
        else:
            # Spaces around the parentheses: the SDK finds @parameters by splitting on spaces.
            query = "PartitionKey eq @pk and ( RowKey eq 'sentinel' or ExecutionId eq @eid )"
            params = {"pk": pk, "eid": execution_id}
        raw = await self._query(query, params)
        generation = rows.select_generation(raw, execution_id)
        sentinel = generation.sentinel
        events = []
        for row in generation.committed:
            events.append(rows.row_to_event(await self._with_blobs_downloaded(row)))
        return rows.HistoryPage(
            instance_id=instance_id,
            execution_id=generation.execution_id,
            events=tuple(events),
            sentinel_etag=_etag(sentinel) if sentinel is not None else None,
            checkpoint_complete=bool(sentinel.get("IsCheckpointComplete", True)) if sentinel else True,
            uncommitted_row_keys=tuple(r["RowKey"] for r in generation.uncommitted),
        )

    async def find_events(
        self, instance_id: str, execution_id: str, event_type: ev.EventType
    ) -> list[ev.HistoryEvent]:
        """One generation's events of one type, in order, without reading the rest of its history
        (the client reads a failed instance's ExecutionCompleted this way)."""
        query = "PartitionKey eq @pk and ExecutionId eq @eid and EventType eq @et"
        params = {"pk": escape_partition_key(instance_id), "eid": execution_id, "et": event_type.name}
        found = await self._query(query, params)
        found.sort(key=lambda row: row["RowKey"])
        return [rows.row_to_event(await self._with_blobs_downloaded(row)) for row in found]

    async def _with_blobs_downloaded(self, row: Any) -> dict[str, Any]:
        data = dict(row)
        for column in list(data):
            if column.endswith(rows.BLOB_NAME_SUFFIX) and data[column]:
                prop = column[: -len(rows.BLOB_NAME_SUFFIX)]
                data[prop] = await self._blobs.download(data[column])
        return data

    async def commit(
        self,
        instance_id: str,
        execution_id: str,
        new_events: Sequence[ev.HistoryEvent],
        *,
        first_sequence_number: int,
        sentinel_etag: str | None,
        replaced: Mapping[int, ev.HistoryEvent] | None = None,
        uncommitted_row_keys: Sequence[str] = (),
    ) -> str:
        """Append ``new_events`` (numbered from ``first_sequence_number``); return the new ETag.

        ``replaced`` rewrites earlier rows (sequence number → event), last: a rewind blanks rows
        out this way. ``uncommitted_row_keys`` (``HistoryPage``) are rows a torn checkpoint left
        beyond the history; those this one does not overwrite are deleted. More than 99 rows
        take several transactions: until the last one is in, the sentinel keeps the earlier
        length (``rows.COMMITTED_EVENT_COUNT``), so a failure between them leaves the history
        as it was and the episode can run again.

        Raises:
            CheckpointConflictError: the sentinel changed since ``sentinel_etag`` was read.
        """
        end = first_sequence_number + len(new_events)
        numbered = [*enumerate(new_events, start=first_sequence_number), *sorted((replaced or {}).items())]
        ops: list[Any] = [
            (
                TransactionOperation.UPSERT,
                await self._offload_large_properties(
                    rows.event_to_row(
                        event, instance_id=instance_id, execution_id=execution_id, sequence_number=n
                    ),
                    instance_id,
                ),
                {"mode": UpdateMode.REPLACE},
            )
            for n, event in numbered
        ]
        pk = escape_partition_key(instance_id)
        ops += [
            (TransactionOperation.DELETE, {"PartitionKey": pk, "RowKey": key})
            for key in uncommitted_row_keys
            if int(key, 16) >= end
        ]
        batches: list[list[Any]] = [[]]
        size = 0
        for op in ops:
            estimate = rows.estimated_row_size(op[1])
            if batches[-1] and (
                len(batches[-1]) >= MAX_EVENTS_PER_BATCH or size + estimate > MAX_BATCH_ESTIMATE_BYTES
            ):
                batches.append([])
                size = 0
            batches[-1].append(op)
            size += estimate
        etag = sentinel_etag
        for i, batch in enumerate(batches):
            final = i == len(batches) - 1
            sentinel = rows.sentinel_row(
                instance_id,
                execution_id,
                complete=final,
                committed_events=end if final else first_sequence_number,
                now=datetime.now(UTC),
            )
            if etag is None:
                batch = [*batch, (TransactionOperation.CREATE, sentinel)]
            else:
                guard = {
                    "mode": UpdateMode.MERGE,
                    "etag": etag,
                    "match_condition": MatchConditions.IfNotModified,
                }
                batch = [*batch, (TransactionOperation.UPDATE, sentinel, guard)]
            result = await self._submit(instance_id, batch)
            etag = result[-1]["etag"]
        assert etag is not None
        return etag

    async def _offload_large_properties(self, row: dict[str, Any], instance_id: str) -> dict[str, Any]:
        for prop in rows.oversized_properties(row):
            name = rows.history_blob_name(
                instance_id, row["RowKey"], row["EventType"], random.getrandbits(32), prop
            )
            await self._blobs.upload(name, row[prop])
            row[prop] = ""
            row[prop + rows.BLOB_NAME_SUFFIX] = name
        return row

    async def list_rows(self, instance_id: str) -> list[dict[str, Any]]:
        """Every raw row of an instance, sentinel included (for tools and tests)."""
        params = {"pk": escape_partition_key(instance_id)}
        return [dict(e) for e in await self._query("PartitionKey eq @pk", params)]

    async def list_key_range(
        self,
        low: str,
        high: str,
        *,
        select: Sequence[str],
        page_size: int,
        take_page: Callable[[list[Any], bool], bool],
    ) -> None:
        """The rows of every partition from ``low`` to ``high`` (escaped instance ids, both
        included), in the service's order, one page at a time to ``take_page(rows, last)``,
        which returns False to stop reading (``durablehub._history_ranges``)."""
        # The pager has the continuation token, although its stubs say a bare iterator.
        pages: Any = self._table.query_entities(
            "PartitionKey ge @low and PartitionKey le @high",
            parameters={"low": low, "high": high},
            select=list(select),
            results_per_page=page_size,
        ).by_page()
        try:
            async for page in pages:
                found = [e async for e in page]
                if not take_page(found, not pages.continuation_token) or not pages.continuation_token:
                    return
        except ResourceNotFoundError as exc:
            if not self._resource.is_missing(exc):
                raise
            take_page([], True)  # no table yet: no rows

    async def delete_instance(
        self, instance_id: str, *, found_at: datetime | None = None, listed: Sequence[Any] | None = None
    ) -> int:
        """Delete every row of one instance, oldest first; return the count.

        Guarded by the sentinel as a commit is: each transaction of up to 99 deletes also
        merges the sentinel under its last ETag, and the last one deletes it. A commit made
        meanwhile (the instance restarted, an entity signalled) wins, and this stops with
        CheckpointConflictError; what it deleted so far was history older than that commit.
        With ``found_at`` (the Timestamp of the Instances row the caller found finished, which
        every checkpoint writes after the history), a sentinel written later (the instance
        restarted, rewound or signalled before its rows were listed) stops it before anything
        is deleted.

        ``listed``: the instance's rows as a query with ``DELETE_SELECT`` returned them (a
        purge by filter lists many instances in one range query); its own query otherwise.

        Raises:
            CheckpointConflictError: the instance was written since its rows were listed, or
                since ``found_at``.
        """
        for _ in range(_RELISTS):
            try:
                return await self._delete_listed(
                    instance_id,
                    listed if listed is not None else await self._list_to_delete(instance_id),
                    found_at,
                )
            except CheckpointConflictError as exc:
                # A 404, not a conflict: rows were deleted since they were listed, by another
                # purge of the same instance (a parent's recursive one, in a purge by filter
                # that selects both). What is left is listed again.
                if getattr(exc.__cause__, "status_code", None) != 404:
                    raise
                listed = None
        raise CheckpointConflictError(instance_id)

    async def _list_to_delete(self, instance_id: str) -> list[Any]:
        params = {"pk": escape_partition_key(instance_id)}
        return await self._query("PartitionKey eq @pk", params, select=list(DELETE_SELECT))

    async def _delete_listed(self, instance_id: str, listed: Sequence[Any], found_at: datetime | None) -> int:
        sentinel = next((e for e in listed if e["RowKey"] == rows.SENTINEL_ROW_KEY), None)
        written = sentinel.metadata.get("timestamp") if sentinel is not None else None
        if found_at is not None and written is not None and written > found_at:
            raise CheckpointConflictError(instance_id)
        keys = sorted(
            ({"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]} for e in listed if e is not sentinel),
            key=lambda key: key["RowKey"],
        )
        if sentinel is None:  # not written by a checkpoint: nothing to guard with
            for start in range(0, len(keys), 100):
                await self._submit(
                    instance_id, [(TransactionOperation.DELETE, k) for k in keys[start : start + 100]]
                )
            return len(keys)
        sentinel_key = {"PartitionKey": sentinel["PartitionKey"], "RowKey": rows.SENTINEL_ROW_KEY}
        etag = _etag(sentinel)
        chunks = [
            keys[start : start + MAX_EVENTS_PER_BATCH] for start in range(0, len(keys), MAX_EVENTS_PER_BATCH)
        ]
        for i, chunk in enumerate(chunks or [[]]):
            guard = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
            if i == len(chunks or [[]]) - 1:
                last: Any = (TransactionOperation.DELETE, sentinel_key, guard)
            else:
                last = (TransactionOperation.UPDATE, sentinel_key, {"mode": UpdateMode.MERGE, **guard})
            result = await self._submit(
                instance_id, [*((TransactionOperation.DELETE, k) for k in chunk), last]
            )
            etag = result[-1].get("etag", etag)
        return len(keys) + 1

    async def _submit(self, instance_id: str, operations: list[Any]) -> list[Any]:
        try:
            return await submit_transaction(self._table, operations)
        except (TableTransactionError, HttpResponseError) as exc:
            if _is_lost_race(exc):  # another writer (or a purge) got there first
                raise CheckpointConflictError(instance_id) from exc
            raise
