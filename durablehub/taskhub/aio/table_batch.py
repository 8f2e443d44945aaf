"""submit_transaction: one entity-group transaction through a table client's own pipeline.

The same request and the same errors as ``TableClient.submit_transaction``, with the body and
the reply handled by ``batch_wire`` instead of azure-core's multipart support (see there why).
The request goes through the client's pipeline, so authentication, retries and the request
counter apply as to every other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import azure.data.tables._error as sdk_errors
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

from durablehub.taskhub import batch_wire

# azure-core repeats a request that failed on the wire (a reset or dropped connection, a
# timeout) only for the methods it deems safe, not POST. The task hub's POSTs are safe to repeat:
# a transaction that took effect conflicts on its second run (the sentinel's ETag, rows already
# inserted or deleted), an insert that did gets 409, and their callers settle both already.
RETRY_POST: dict[str, Any] = {
    "retry_on_methods": frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})
}

# Loop iterations before a transaction takes a connection: one reads the service's close, the
# next runs the protocol's connection_lost, which takes the connection out of the pool.
_YIELDS = 3


async def submit_transaction(
    table: TableClient, operations: Sequence[batch_wire.Operation]
) -> list[dict[str, str]]:
    """Commit ``operations`` (tuples as ``TableClient.submit_transaction`` takes them) as one
    transaction; return each operation's new ETag (``{"etag": ...}``, ``{}`` for a delete).

    Raises:
        TableTransactionError: an operation failed (``status_code``, ``error_code``, ``index``).
        HttpResponseError: the transaction as a whole was refused (e.g. ResourceNotFoundError
            for a missing table).
    """
    endpoint = f"{table.scheme}://{table._primary_hostname}"  # what the SDK sends transactions to
    body, content_type = batch_wire.build(endpoint, table.table_name, operations)
    request = HttpRequest(
        "POST",
        f"{endpoint}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": content_type,
            "Accept": "application/json",
        },
        content=body,
    )
    # Let the loop see connections the service closed while it was blocked (a paused worker),
    # before one is taken from the pool: a POST on a dead connection is not retried. The
    # tables SDK yields here too, gathering its sub-requests' policies.
    for _ in range(_YIELDS):
        await asyncio.sleep(0)
    response: Any = await table._client.send_request(request, stream=True, **RETRY_POST)
    await response.read()
    if response.status_code == 413:
        raise sdk_errors._decode_error(
            response,
            error_message="The transaction request was too large",
            error_type=sdk_errors.RequestTooLargeError,
        )
    if response.status_code != 202:
        decoded = sdk_errors._decode_error(response)  # the SDK's own reading of a refusal
        sdk_errors._validate_tablename_error(decoded, table.table_name)
        raise decoded
    return batch_wire.results(batch_wire.parse(response.content, response.headers.get("Content-Type", "")))
