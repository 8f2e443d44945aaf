"""Table entity-group transactions on the wire: the multipart body and the reply, without I/O.

azure-core builds a transaction's body with the stdlib ``email`` package, runs a policy on each
operation in a thread pool it creates per transaction (sync pipeline) and parses the reply with
``email`` again: most of the CPU a purge or a History commit costs. This writes the same body
(the requests ``TableClient.submit_transaction`` sends: verbs, URLs, headers, entity JSON from
the tables SDK's own property serializer, so every Edm type is written as it would be) with
string joins, and reads the reply by splitting it on its boundaries. Sub-requests carry no
date headers: the outer request is the one signed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.data.tables import TableErrorCode, TableTransactionError, TransactionOperation, UpdateMode
from azure.data.tables._error import RequestTooLargeError
from azure.data.tables._serialize import _add_entity_properties

API_VERSION = "2019-02-02"  # what the tables SDK speaks
MAX_OPERATIONS = 100  # the service's limit (Azurite answers more with a malformed reply)

Operation = tuple[Any, ...]  # (kind, entity) or (kind, entity, options), as the tables SDK takes


@dataclass(frozen=True)
class PartReply:
    """One operation's answer inside a transaction's reply."""

    status: int
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""


def _key(value: Any) -> str:
    # The tables SDK's _prepare_key (quotes doubled) then its URL serializer (everything quoted).
    return quote(str(value).replace("'", "''"), safe="")


def _kind(value: Any) -> str:
    kind = value.value if isinstance(value, TransactionOperation) else str(value).lower()
    if kind not in ("create", "upsert", "update", "delete"):
        raise ValueError(f"unknown table transaction operation {value!r}")
    return kind


def _mode(options: Mapping[str, Any]) -> UpdateMode:
    mode = options.get("mode", UpdateMode.MERGE)
    try:
        return UpdateMode(mode)
    except ValueError:
        raise ValueError(f"Mode type '{mode}' is not supported.") from None


def _if_match(entity: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """The If-Match header, by the tables SDK's rules (an entity it read brings its ETag)."""
    condition = options.get("match_condition") or MatchConditions.Unconditionally
    etag = options.get("etag")
    if condition is MatchConditions.IfNotModified:
        etag = etag or getattr(entity, "metadata", {}).get("etag")
        if not etag:
            raise ValueError("IfNotModified must be specified with etag.")
        if etag.startswith(("W/", '"', "'")) or etag == "*":
            return str(etag)
        return f'"{etag}"'
    if condition is MatchConditions.Unconditionally:
        if etag:
            raise ValueError("Etag is not supported for an Unconditional operation.")
        return "*"
    raise ValueError(f"Unsupported match condition: {condition}")


def _request(table_url: str, operation: Operation) -> str:
    """One operation as the HTTP request inside the changeset (without its MIME headers)."""
    if len(operation) not in (2, 3):
        raise TypeError("a table transaction operation is (kind, entity) or (kind, entity, options)")
    kind, entity = _kind(operation[0]), operation[1]
    options: Mapping[str, Any] = operation[2] if len(operation) == 3 and operation[2] else {}
    entity_url = (
        f"{table_url}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    )
    headers = [f"x-ms-version: {API_VERSION}", "DataServiceVersion: 3.0"]
    if kind == "delete":
        verb, url, payload = "DELETE", entity_url, None
        headers += [
            "Accept: application/json;odata=minimalmetadata",
            f"If-Match: {_if_match(entity, options)}",
        ]
    else:
        payload = json.dumps(_add_entity_properties(entity)).encode()
        if kind == "create":
            verb, url = "POST", table_url
            headers.append("Accept: application/json;odata=minimalmetadata")
        else:
            verb = "PUT" if _mode(options) is UpdateMode.REPLACE else "PATCH"
            url = entity_url
            headers.append("Accept: application/json")
            if kind == "update":
                headers.append(f"If-Match: {_if_match(entity, options)}")
        headers[0:0] = ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    head = f"{verb} {url} HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    return head + (payload.decode() if payload is not None else "")


def build(endpoint: str, table: str, operations: Sequence[Operation]) -> tuple[bytes, str]:
    """The body of ``POST {endpoint}/$batch`` and its Content-Type.

    Raises:
        ValueError: no operations, more than 100, or not all in one partition.
        TypeError: an operation is not a (kind, entity[, options]) tuple, or a property has a
            type the tables SDK cannot write.
    """
    if not operations:
        raise ValueError("a table transaction needs at least one operation")
    if len(operations) > MAX_OPERATIONS:
        raise ValueError(
            f"a table transaction takes at most {MAX_OPERATIONS} operations, got {len(operations)}"
        )
    partitions = {op[1]["PartitionKey"] for op in operations}
    if len(partitions) != 1:
        raise ValueError("all operations of a table transaction must be in one partition")
    table_url = f"{endpoint}/{quote(table, safe='')}"
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    chunks = [
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n",
    ]
    for index, operation in enumerate(operations):
        chunks.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\n{_request(table_url, operation)}\r\n"
        )
    chunks.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n")
    return "".join(chunks).encode(), f"multipart/mixed; boundary={batch}"


def _boundary(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise ValueError(f"a multipart reply without a boundary: {content_type!r}")


def _headers(block: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


def _segments(body: bytes, boundary: str) -> list[bytes]:
    """The parts between ``--boundary`` delimiters, each from its first header line."""
    delimiter = b"--" + boundary.encode()
    pieces = body.split(delimiter)[1:]  # what precedes the first delimiter is a preamble
    parts = []
    for piece in pieces:
        if piece.startswith(b"--"):  # the closing delimiter
            break
        parts.append(piece[2:] if piece.startswith(b"\r\n") else piece)
    return parts


def parse(body: bytes, content_type: str) -> list[PartReply]:
    """Every operation's reply in a transaction's 202 answer, in order.

    Raises:
        ValueError: the reply is not a multipart answer of HTTP responses.
    """
    replies: list[PartReply] = []
    for segment in _segments(body, _boundary(content_type)):
        head, _, rest = segment.partition(b"\r\n\r\n")
        headers = _headers(head)
        kind = headers.get("content-type", "")
        if kind.lower().startswith("multipart/mixed"):
            replies.extend(parse(rest, kind))
            continue
        status_line, _, message = rest.partition(b"\r\n")
        version, _, status_and_reason = status_line.decode("latin-1").partition(" ")
        code, _, reason = status_and_reason.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            raise ValueError(f"a table transaction reply part is not an HTTP response: {status_line[:80]!r}")
        part_head, _, part_body = message.partition(b"\r\n\r\n")
        if part_body.endswith(b"\r\n"):
            part_body = part_body[:-2]
        replies.append(PartReply(int(code), reason, _headers(part_head), part_body))
    return replies


def part_error(part: PartReply) -> TableTransactionError:
    """The error the tables SDK raises for a failed operation (TableTransactionError, or
    RequestTooLargeError for 413), with its status code, error code and operation index."""
    code: Any = part.headers.get("x-ms-error-code")
    message = part.reason
    try:
        error = json.loads(part.body or b"{}").get("odata.error", {})
        code = error.get("code", code)
        message = error.get("message", {}).get("value", message)
    except (ValueError, AttributeError):
        pass
    try:
        code = TableErrorCode(code)
    except ValueError:
        pass
    shown = code.value if isinstance(code, TableErrorCode) else code
    kind = RequestTooLargeError if part.status == 413 else TableTransactionError
    exc = kind(message=f"{message}\nErrorCode:{shown}")
    exc.status_code = part.status
    exc.reason = part.reason
    exc.error_code = code  # type: ignore[attr-defined]  # set after construction, as the SDK does
    return exc


def results(parts: Sequence[PartReply]) -> list[dict[str, str]]:
    """What ``submit_transaction`` returns: each operation's new ETag, if it has one.

    Raises:
        TableTransactionError: an operation failed (the first failure, as the SDK raises it).
    """
    for part in parts:
        if not 200 <= part.status < 300:
            raise part_error(part)
    return [{"etag": p.headers["etag"]} if "etag" in p.headers else {} for p in parts]
