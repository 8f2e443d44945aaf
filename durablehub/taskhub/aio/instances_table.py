"""AsyncInstancesTable: the ``{Hub}Instances`` table, one row per instance (RowKey ``""``).

Values over 60 KiB of UTF-16 (``Input``, ``Output``, ``CustomStatus``) go to the
large-message container and the column holds the blob's full URL, as the reference does.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any, cast

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from durablehub.engine import history as ev
from durablehub.taskhub import compression, envelope, on_demand, rows
from durablehub.taskhub.aio.connections import AsyncStorageClients
from durablehub.taskhub.aio.large_messages import AsyncLargeMessageStore
from durablehub.taskhub.aio.table_batch import RETRY_POST
from durablehub.taskhub.aio.tables import table_exists
from durablehub.taskhub.names import TaskHubNames, escape_partition_key, unescape_partition_key
from durablehub.taskhub.offload import async_bounded_map, async_offload
from durablehub.taskhub.on_demand import async_made_on_demand
from durablehub.taskhub.records import InstanceRecord, InstanceUpdate

_URL_COLUMNS = ("Input", "Output", "CustomStatus")
# A client whose start message went to a blob points Input at that message blob (the
# reference's CreateTaskOrchestrationAsync); the input is the message's ExecutionStarted.Input.
_START_MESSAGE_BLOB_SUFFIX = "ExecutionStarted.json.gz"


# Blobs downloaded at once for one page of query results.
_DOWNLOADS_AT_ONCE = 8
# In a continuation token: the last row a page cut short by its blobs' size returned.
_RETURNED_UP_TO = "ReturnedUpTo"


def _start_input(message: envelope.MessageData) -> str | None:
    event = message.event
    return event.input if isinstance(event, ev.ExecutionStarted) else None


class AsyncInstancesTable:
    def __init__(
        self, clients: AsyncStorageClients, names: TaskHubNames, large_messages: AsyncLargeMessageStore
    ) -> None:
        self._table = clients.table.get_table_client(names.instances_table)
        self.table_name = names.instances_table
        self._task_hub = names.hub
        self._blobs = large_messages
        # An insert or upsert makes the table if it is missing (a hub not yet whole); reads
        # find no rows. A write guarded by an ETag needs a row, so it makes nothing.
        self._resource = on_demand.table(names.instances_table)

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

    async def get(self, instance_id: str, *, resolve_blobs: bool = True) -> dict[str, Any] | None:
        """The instance's row with large values downloaded, or None. ``etag`` is in ``["_etag"]``."""
        try:
            entity = await self._table.get_entity(escape_partition_key(instance_id), "")
        except ResourceNotFoundError:
            return None
        return await self._row(entity, resolve_blobs=resolve_blobs)

    async def get_record(self, instance_id: str, *, resolve_blobs: bool = True) -> InstanceRecord | None:
        """The instance's row as a typed record, or None."""
        row = await self.get(instance_id, resolve_blobs=resolve_blobs)
        return None if row is None else InstanceRecord.from_row(row)

    async def _row(
        self, entity: Any, *, resolve_blobs: bool, charge: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        row = dict(entity)
        row["_etag"] = entity.metadata["etag"]
        row["_timestamp"] = entity.metadata.get("timestamp")  # the service's clock: last write
        return await self.resolve_blobs(row, charge=charge) if resolve_blobs else row

    async def resolve_blobs(
        self, row: dict[str, Any], *, charge: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """A row read with ``resolve_blobs=False``, its large values downloaded (in place)."""
        for column in _URL_COLUMNS:
            value = row.get(column)
            blob = self._blobs.blob_name_from_url(value) if isinstance(value, str) else None
            if blob is not None:
                text = await self._blobs.download(blob, charge=charge)
                if column == "Input" and blob.endswith(_START_MESSAGE_BLOB_SUFFIX):
                    row[column] = _start_input(await async_offload(envelope.decode, len(text), text))
                else:
                    row[column] = text
        return row

    async def _resolve_page(self, entities: list[Any]) -> tuple[list[dict[str, Any]], int | None]:
        """The rows with their blobs, a few downloads at a time, and the index of the first row
        left for the next page (None: all fit) once the page's blobs reach max_decompressed_bytes.
        The first row always fits, so that paging moves on."""
        budget = compression.ByteBudget(self._blobs.max_decompressed_bytes)

        async def resolve(indexed: tuple[int, Any]) -> dict[str, Any]:
            index, entity = indexed
            if budget.refuses(index):
                raise compression.PageBudgetExhausted
            return await self._row(entity, resolve_blobs=True, charge=budget.charger(index))

        results = await async_bounded_map(resolve, list(enumerate(entities)), limit=_DOWNLOADS_AT_ONCE)
        rows: list[dict[str, Any]] = []
        failed: Exception | None = None
        for result in results:
            if isinstance(result, Exception):
                failed = result
                break
            rows.append(result)
        # Rows ran side by side: the page is the longest run from the first that fits.
        end = budget.fits(len(rows))
        if end == len(rows) and failed and not isinstance(failed, compression.PageBudgetExhausted):
            raise failed  # the next row of the page cannot be read
        return rows[:end], (end if end < len(entities) else None)

    async def query_page(
        self,
        filter: str,
        *,
        parameters: dict[str, Any],
        select: list[str] | None,
        page_size: int,
        continuation_token: dict[str, Any] | None,
        resolve_blobs: bool,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of rows (at most ``page_size``) and the token of the next page, or None.

        With ``resolve_blobs``, a page ends early once its blobs reach ``max_decompressed_bytes``;
        its token then reads the same page of the service again, past the last row returned
        (the service's tokens are opaque: one cannot be made for a row of our choosing)."""
        service_token = dict(continuation_token or {})
        after = service_token.pop(_RETURNED_UP_TO, None)
        # The tables SDK's tokens are dicts of next keys, although its pager's stubs say str.
        pages: Any = self._table.query_entities(
            filter, parameters=parameters, select=select, results_per_page=page_size
        ).by_page(continuation_token=cast(Any, service_token or None))
        entities: list[Any] = []
        try:
            async for page in pages:
                entities = [e async for e in page if after is None or e["PartitionKey"] > after]
                break
        except ResourceNotFoundError as exc:
            if not self._resource.is_missing(exc):
                raise
            return [], None  # no table yet: no instances
        if not resolve_blobs:
            return [await self._row(e, resolve_blobs=False) for e in entities], pages.continuation_token
        found, cut = await self._resolve_page(entities)
        if cut is None:
            return found, pages.continuation_token
        return found, {**service_token, _RETURNED_UP_TO: entities[cut - 1]["PartitionKey"]}

    async def merge(self, row: dict[str, Any], *, etag: str) -> str:
        """Merge columns into the row if it still has ``etag`` (ResourceModifiedError otherwise)."""
        result = await self._table.update_entity(
            row, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
        return result["etag"]

    async def _offload(self, row: dict[str, Any]) -> dict[str, Any]:
        instance_id = unescape_partition_key(row["PartitionKey"])
        for column in _URL_COLUMNS:
            value = row.get(column)
            if isinstance(value, str) and rows.utf16_size(value) > rows.MAX_PROPERTY_UTF16_BYTES:
                name = rows.history_blob_name(instance_id, "", column, random.getrandbits(32), column)
                await self._blobs.upload(name, value)
                row[column] = self._blobs.url(name)
        return row

    async def insert(self, row: dict[str, Any]) -> str:
        """Insert a new row; ResourceExistsError if the instance already has one. Returns the ETag."""
        insert = functools.partial(self._table.create_entity, await self._offload(dict(row)), **RETRY_POST)
        result = await async_made_on_demand(self._resource, insert, self.create)
        return result["etag"]

    async def replace(self, row: dict[str, Any], *, etag: str) -> str:
        """Replace the whole row if it still has ``etag`` (ResourceModifiedError otherwise)."""
        result = await self._table.update_entity(
            await self._offload(dict(row)),
            mode=UpdateMode.REPLACE,
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
        return result["etag"]

    async def merge_update(self, update: InstanceUpdate) -> str:
        """Merge a checkpoint's columns (InsertOrMerge, as every reference checkpoint does)."""
        return await self.upsert_merge(update.to_row(self._task_hub))

    async def upsert_merge(self, row: dict[str, Any]) -> str:
        """InsertOrMerge, what every checkpoint does."""
        upsert = functools.partial(
            self._table.upsert_entity, await self._offload(dict(row)), mode=UpdateMode.MERGE
        )
        result = await async_made_on_demand(self._resource, upsert, self.create)
        return result["etag"]

    async def delete(self, instance_id: str, *, etag: str | None = None) -> bool:
        """Delete the row (only if it still has ``etag``, when given); False if there was none.
        One plain DELETE: the SDK hides its 404, which the response hook sees. (A transaction of
        one reports it too, but costs Azurite half as much again and the client three times.)

        Raises:
            ResourceModifiedError: the row changed since ``etag`` was read.
        """
        statuses: list[int] = []
        guard: dict[str, Any] = (
            {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        )
        try:
            await self._table.delete_entity(
                escape_partition_key(instance_id),
                "",
                raw_response_hook=lambda response: statuses.append(response.http_response.status_code),
                **guard,
            )
        except ResourceModifiedError as exc:
            raise ResourceModifiedError(f"the Instances row of {instance_id!r} changed meanwhile") from exc
        return 404 not in statuses

    async def query(
        self,
        filter: str,
        *,
        parameters: dict[str, Any] | None = None,
        select: list[str] | None = None,
        results_per_page: int | None = None,
    ) -> list[dict[str, Any]]:
        pager = self._table.query_entities(
            filter, parameters=parameters, select=select, results_per_page=results_per_page
        )
        try:
            return [dict(e) async for e in pager]
        except ResourceNotFoundError as exc:
            if not self._resource.is_missing(exc):
                raise
            return []
