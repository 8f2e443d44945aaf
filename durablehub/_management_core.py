"""The management operations' decisions, without I/O, for both clients.

Terminate, suspend, resume and rewind are control messages, as in DurableTask.AzureStorage:
the worker that owns the instance's partition applies them in order with everything else
the instance receives, so a client never edits history behind a worker's back. What the
client checks first is whether the operation makes sense in the instance's current status,
so that nonsense fails at once with a clear error and changes nothing.

Queries follow the reference's ``OrchestrationInstanceStatusQueryCondition`` (taskhub-layout.md
§3): created-time range, statuses or-ed, an id prefix as a PartitionKey range, entities left
out; paging by the table service's continuation token, handed out as an opaque string.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from durablehub._client_core import CLIENT_SENDER, require_row, status_of
from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, check_size
from durablehub.errors import OrchestrationStateError
from durablehub.models import OrchestrationStatus
from durablehub.state import OrchestrationQuery
from durablehub.taskhub.envelope import MessageData, TaskMessage
from durablehub.taskhub.names import escape_partition_key

FINISHED = frozenset(status for status in OrchestrationStatus if status.is_terminal)
# A start due this recently may still be waiting in its queue: its row is marked, not messaged.
_START_GRACE = timedelta(seconds=30)


def control_message(
    instance_id: str, event: ev.HistoryEvent, *, execution_id: str | None = None
) -> MessageData:
    """A client's message to an instance (``execution_id`` None: whichever generation is current)."""
    target = ev.OrchestrationInstance(instance_id=instance_id, execution_id=execution_id)
    return MessageData(
        task_message=TaskMessage(event=event, orchestration_instance=target), sender=CLIENT_SENDER
    )


def require_unfinished(
    instance_id: str, row: Mapping[str, Any] | None, operation: str
) -> OrchestrationStatus:
    """The status of an instance that can still be ``operation``-ed.

    Raises:
        OrchestrationNotFoundError: no such instance.
        OrchestrationStateError: the instance has finished.
    """
    status = status_of(require_row(instance_id, row))
    if status is None or status.is_terminal:
        shown = status.table_name if status is not None else str(row.get("RuntimeStatus") if row else None)
        raise OrchestrationStateError(
            f"cannot {operation} orchestration instance {instance_id!r}: it is {shown}",
            instance_id=instance_id,
            status=shown,
        )
    return status


def require_status(
    instance_id: str, row: Mapping[str, Any] | None, allowed: Collection[OrchestrationStatus], operation: str
) -> OrchestrationStatus:
    """The status of an instance that is in one of ``allowed``.

    Raises:
        OrchestrationNotFoundError: no such instance.
        OrchestrationStateError: it is in another status.
    """
    status = status_of(require_row(instance_id, row))
    if status is None or status not in allowed:
        shown = status.table_name if status is not None else "of unknown status"
        wanted = " or ".join(sorted(s.table_name for s in allowed))
        raise OrchestrationStateError(
            f"cannot {operation} orchestration instance {instance_id!r}: it is {shown}, not {wanted}",
            instance_id=instance_id,
            status=shown,
        )
    return status


def terminate_event(
    output: Any, *, recursive: bool, now: datetime | None = None, max_payload_bytes: int | None = None
) -> ev.ExecutionTerminated:
    what = "output (reason) of terminate_orchestration"
    reason = check_size(JSON_CODEC.encode(output, what=what), what=what, max_bytes=max_payload_bytes)
    return ev.ExecutionTerminated(timestamp=now or datetime.now(UTC), input=reason, recurse=recursive or None)


def is_scheduled_pending(row: Mapping[str, Any], *, now: datetime | None = None) -> bool:
    """A Pending instance whose start message is still hidden until its scheduled time."""
    start = row.get("ScheduledStartTime")
    if status_of(row) is not OrchestrationStatus.PENDING or not isinstance(start, datetime):
        return False
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    return start > (now or datetime.now(UTC)) - _START_GRACE


def terminated_before_start(
    instance_id: str, event: ev.ExecutionTerminated, *, now: datetime | None = None
) -> dict[str, Any]:
    """The columns that terminate a scheduled start (the reference's UpdateStatusForTerminationAsync,
    taskhub-layout.md §3 item 3); the worker reads them when the start message shows up."""
    now = now or datetime.now(UTC)
    return {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": "",
        "RuntimeStatus": OrchestrationStatus.TERMINATED.table_name,
        "Output": event.input if event.input is not None else "null",
        "LastUpdatedTime": now,
        "CompletedTime": now,
    }


def pending_after_rewind(instance_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The Instances columns a rewind request merges (the reference's UpdateStatusForRewindAsync)."""
    return {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": "",
        "RuntimeStatus": OrchestrationStatus.PENDING.table_name,
        "LastUpdatedTime": now or datetime.now(UTC),
    }


def check_reason(reason: Any, operation: str, *, max_payload_bytes: int | None = None) -> str | None:
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"reason must be a string, got {type(reason).__name__}")
    return check_size(reason, what=f"reason of {operation}", max_bytes=max_payload_bytes)


# -------------------------------------------------------------------------------------- purge


def purge_statuses(runtime_status: Iterable[OrchestrationStatus] | None) -> frozenset[OrchestrationStatus]:
    """The statuses a purge by filter may remove: finished ones, all of them by default."""
    if runtime_status is None:
        return FINISHED
    if isinstance(runtime_status, (str, OrchestrationStatus)):
        raise TypeError("runtime_status must be a collection of OrchestrationStatus")
    chosen = frozenset(runtime_status)
    live = sorted(s.name for s in chosen - FINISHED)
    if live:
        raise ValueError(
            f"only finished instances can be purged; {', '.join(live)} instances are still live "
            "(terminate them first)"
        )
    return chosen


def child_instance_ids(history_rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the sub-orchestrations any generation of an instance started, in order."""
    ordered = sorted(history_rows, key=lambda r: (str(r.get("ExecutionId")), str(r.get("RowKey"))))
    seen: dict[str, None] = {}
    for row in ordered:
        if row.get("EventType") == ev.EventType.SubOrchestrationInstanceCreated.name and row.get(
            "InstanceId"
        ):
            seen.setdefault(str(row["InstanceId"]), None)
    return list(seen)


# -------------------------------------------------------------------------------------- query

# Entities live in the same table as '@name@key'; orchestration queries leave them out.
_NOT_AN_ENTITY = "( PartitionKey lt '@' or PartitionKey ge 'A' )"
_QUERY_SELECT = [
    "PartitionKey",
    "ExecutionId",
    "Name",
    "Version",
    "CustomStatus",
    "CreatedTime",
    "LastUpdatedTime",
    "CompletedTime",
    "RuntimeStatus",
    "ScheduledStartTime",
    "Generation",
    "Tags",
    "TaskHubName",
]


def query_filter(query: OrchestrationQuery) -> tuple[str, dict[str, Any]]:
    """The OData filter and its parameters. Spaces surround every parenthesis: the tables SDK
    finds ``@name`` parameters by splitting the filter on spaces."""
    clauses = ["RowKey eq ''", _NOT_AN_ENTITY]
    params: dict[str, Any] = {}
    if query.created_time_from is not None:
        clauses.append("CreatedTime ge @created_from")
        params["created_from"] = _utc(query.created_time_from)
    if query.created_time_to is not None:
        clauses.append("CreatedTime le @created_to")
        params["created_to"] = _utc(query.created_time_to)
    if query.runtime_status:
        names = sorted(s.table_name for s in query.runtime_status)
        alternatives = []
        for i, name in enumerate(names):
            alternatives.append(f"RuntimeStatus eq @status{i}")
            params[f"status{i}"] = name
        clauses.append("( " + " or ".join(alternatives) + " )")
    if query.instance_id_prefix:
        low = escape_partition_key(query.instance_id_prefix)
        clauses.append("PartitionKey ge @prefix_low and PartitionKey lt @prefix_high")
        params["prefix_low"] = low
        params["prefix_high"] = low[:-1] + chr(ord(low[-1]) + 1)
    if query.name is not None:
        clauses.append("Name eq @name")
        params["name"] = query.name
    if query.versions is not None:
        # Stored as the reference stores it: "" for an instance started without a version.
        alternatives = []
        for i, version in enumerate(sorted(v or "" for v in query.versions)):
            alternatives.append(f"Version eq @version{i}")
            params[f"version{i}"] = version
        clauses.append("( " + " or ".join(alternatives) + " )" if alternatives else "PartitionKey eq ''")
    return " and ".join(clauses), params


# What a purge by filter reads of each row: its guards (the ETag comes with every row).
PURGE_SELECT = ("PartitionKey", "RuntimeStatus", "Timestamp")


def query_select(query: OrchestrationQuery) -> list[str] | None:
    """Columns to read: all of them only when payloads are wanted (they can be 60 KiB each)."""
    return None if query.fetch_inputs_and_outputs else list(_QUERY_SELECT)


def encode_token(token: Mapping[str, Any] | None) -> str | None:
    if not token:
        return None
    raw = json.dumps(dict(token), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> dict[str, Any] | None:
    """The table service's token from our opaque string.

    Raises:
        ValueError: the string is not a token a previous page returned.
    """
    if token is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"continuation token {token[:40]!r} is not one a previous page returned") from exc
    if not isinstance(value, dict):
        raise ValueError(f"continuation token {token[:40]!r} is not one a previous page returned")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
