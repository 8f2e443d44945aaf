"""AsyncInstancesTable: the ``{Hub}Instances`` table, one row per instance (RowKey ``""``).

Values over 60 KiB of UTF-16 (``Input``, ``Output``, ``CustomStatus``) go to the
large-message container and the column holds the blob's full URL, as the reference does.
"""

from __future__ import annotations

import random
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, TransactionOperation, UpdateMode

from durablehub.taskhub import envelope, rows
from durablehub.taskhub.aio.connections import AsyncStorageClients
from durablehub.taskhub.aio.large_messages import AsyncLargeMessageStore
from durablehub.taskhub.names import TaskHubNames, escape_partition_key, unescape_partition_key
from durablehub.taskhub.records import InstanceRecord, InstanceUpdate

_URL_COLUMNS = ("Input", "Output", "CustomStatus")
# A client whose start message went to a blob points Input at that message blob (the
# reference's CreateTaskOrchestrationAsync); the input is the message's ExecutionStarted.Input.
_START_MESSAGE_BLOB_SUFFIX = "ExecutionStarted.json.gz"


def _payload_of(column: str, blob_name: str, text: str) -> str | None:
    if column == "Input" and blob_name.endswith(_START_MESSAGE_BLOB_SUFFIX):
        return envelope.decode(text).event.input
    return text


class AsyncInstancesTable:
    def __init__(
        self, clients: AsyncStorageClients, names: TaskHubNames, large_messages: AsyncLargeMessageStore
    ) -> None:
        self._table = clients.table.get_table_client(names.instances_table)
        self.table_name = names.instances_table
        self._task_hub = names.hub
        self._blobs = large_messages

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

    async def _row(self, entity: Any, *, resolve_blobs: bool) -> dict[str, Any]:
        row = dict(entity)
        row["_etag"] = entity.metadata["etag"]
        row["_timestamp"] = entity.metadata.get("timestamp")  # the service's clock: last write
        if resolve_blobs:
            for column in _URL_COLUMNS:
                value = row.get(column)
                blob = self._blobs.blob_name_from_url(value) if isinstance(value, str) else None
                if blob is not None:
                    row[column] = _payload_of(column, blob, await self._blobs.download(blob))
        return row

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
        """One page of rows (at most ``page_size``) and the token of the next page, or None."""
        pages = self._table.query_entities(
            filter, parameters=parameters, select=select, results_per_page=page_size
        ).by_page(continuation_token=continuation_token)
        found: list[dict[str, Any]] = []
        async for page in pages:
            found = [await self._row(entity, resolve_blobs=resolve_blobs) async for entity in page]
            break
        return found, pages.continuation_token

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
        result = await self._table.create_entity(await self._offload(dict(row)))
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
        result = await self._table.upsert_entity(await self._offload(dict(row)), mode=UpdateMode.MERGE)
        return result["etag"]

    async def delete(self, instance_id: str, *, etag: str | None = None) -> bool:
        """Delete the row (only if it still has ``etag``, when given); False if there was none.
        (``delete_entity`` hides a 404, a one-op transaction does not, and costs the same.)

        Raises:
            ResourceModifiedError: the row changed since ``etag`` was read.
        """
        key = {"PartitionKey": escape_partition_key(instance_id), "RowKey": ""}
        guard = {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            await self._table.submit_transaction([(TransactionOperation.DELETE, key, guard)])
        except (TableTransactionError, ResourceNotFoundError) as exc:
            status = getattr(exc, "status_code", 404)
            if status == 404:
                return False
            if status == 412:
                raise ResourceModifiedError(
                    f"the Instances row of {instance_id!r} changed meanwhile"
                ) from exc
            raise
        return True

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
        return [dict(e) async for e in pager]
