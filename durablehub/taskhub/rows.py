"""History and Instances rows ↔ engine events and instance status (taskhub-layout.md §2–3).

Pure: entities are plain dicts as ``azure.data.tables`` takes them. Python ``datetime``
becomes Edm.DateTime, small ``int`` Edm.Int32, ``bool`` Edm.Boolean, ``str`` Edm.String --
the types the C# reader maps onto its POCOs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.errors import MalformedMessageError
from durablehub.models import OrchestrationStatus
from durablehub.taskhub import wire
from durablehub.taskhub.names import blob_segments, escape_partition_key, history_row_key

SENTINEL_ROW_KEY = "sentinel"
# Properties that may exceed a table property's 64 KiB and go to a blob (VariableSizeEntityProperties).
VARIABLE_SIZE_PROPERTIES = (
    "Name",
    "Input",
    "Result",
    "Output",
    "Reason",
    "Details",
    "Correlation",
    "FailureDetails",
    "Tags",
    "CustomStatus",
)
MAX_PROPERTY_UTF16_BYTES = 60 * 1024
BLOB_NAME_SUFFIX = "BlobName"


def utf16_size(value: str) -> int:
    return len(value.encode("utf-16-le"))


def _json_text(data: Any) -> str:
    # Newtonsoft's default: compact, non-ASCII kept as is.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------- History rows


def event_to_row(
    event: ev.HistoryEvent, *, instance_id: str, execution_id: str, sequence_number: int
) -> dict[str, Any]:
    """One History row. Object members become JSON text, ``"null"`` when absent."""
    row: dict[str, Any] = {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": history_row_key(sequence_number),
        "ExecutionId": execution_id,
        "EventType": event.event_type.name,
        "EventId": event.event_id,
        "IsPlayed": event.is_played,
        "_Timestamp": event.timestamp,
    }
    for f in dataclasses.fields(event):
        if f.name in wire.BASE_FIELDS:
            continue
        value = getattr(event, f.name)
        column = wire.pascal(f.name)
        if f.name in wire.OBJECT_FIELDS:
            row[column] = _json_text(wire.object_to_json(f.name, value, typed=False))
        elif value is None:
            continue  # Table storage stores no null properties
        elif f.name in wire.STATUS_FIELDS:
            row[column] = value.table_name
        else:
            row[column] = value
    return row


def row_to_event(row: Mapping[str, Any]) -> ev.HistoryEvent:
    """Rebuild an event from a History row whose large properties were already downloaded."""
    try:
        event_type = ev.EventType[row["EventType"]]
    except KeyError as exc:
        raise MalformedMessageError(
            f"History row {row.get('RowKey')!r} has unknown EventType {row.get('EventType')!r}"
        ) from exc
    cls = ev.EVENT_CLASSES[event_type]
    kwargs: dict[str, Any] = {
        "event_id": int(row.get("EventId", -1)),
        "is_played": bool(row.get("IsPlayed", False)),
        "timestamp": _as_utc(row.get("_Timestamp")) or datetime.now(UTC),
    }
    for f in dataclasses.fields(cls):
        if f.name in wire.BASE_FIELDS:
            continue
        column = wire.pascal(f.name)
        if column not in row:
            continue
        value = row[column]
        if f.name in wire.OBJECT_FIELDS:
            kwargs[f.name] = wire.object_from_json(f.name, json.loads(value) if value else None)
        elif f.name in wire.STATUS_FIELDS:
            kwargs[f.name] = OrchestrationStatus.from_table_name(value)
        elif f.name in wire.DATETIME_FIELDS:
            kwargs[f.name] = _as_utc(value)
        else:
            kwargs[f.name] = value
    return cls(**kwargs)


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return wire.parse_datetime(str(value))


# durablehub's own sentinel column (the reference ignores columns it does not know): how many
# events of ``ExecutionId`` the last *complete* checkpoint left. An episode of more than 99
# events is written in several transactions; until its last one, the rows it wrote beyond this
# count are not history yet, and readers leave them out (the reference's known gap, DF #332).
COMMITTED_EVENT_COUNT = "CommittedEventCount"


def sentinel_row(
    instance_id: str,
    execution_id: str,
    *,
    complete: bool,
    committed_events: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The sentinel as one transaction of a checkpoint writes it: ``committed_events`` is the
    history's length once this transaction is in (the earlier length while incomplete)."""
    row: dict[str, Any] = {
        "PartitionKey": escape_partition_key(instance_id),
        "RowKey": SENTINEL_ROW_KEY,
        "ExecutionId": execution_id,
        "IsCheckpointComplete": complete,
        COMMITTED_EVENT_COUNT: committed_events,
    }
    if complete:
        row["CheckpointCompletedTimestamp"] = now or datetime.now(UTC)
    return row


def oversized_properties(row: Mapping[str, Any]) -> list[str]:
    """Names of string properties too large for a table property (more than 60 KiB of UTF-16)."""
    return [
        name
        for name in VARIABLE_SIZE_PROPERTIES
        if isinstance(row.get(name), str) and utf16_size(row[name]) > MAX_PROPERTY_UTF16_BYTES
    ]


def history_blob_name(instance_id: str, row_key: str, event_type: str, random32: int, prop: str) -> str:
    """``{escapedId}/history-{RowKey}-{EventType}-{rand:X8}-{Prop}.json.gz`` (a fixed format;
    an id ``.`` or ``..`` is escaped, see ``blob_segments``)."""
    prefix = blob_segments(escape_partition_key(instance_id))
    return f"{prefix}/history-{row_key}-{event_type}-{random32:08X}-{prop}.json.gz"


def estimated_row_size(row: Mapping[str, Any]) -> int:
    """The reference's batch-size estimate: 1 KB per entity plus its variable-size strings."""
    return 1024 + sum(utf16_size(row[p]) for p in VARIABLE_SIZE_PROPERTIES if isinstance(row.get(p), str))


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """One generation's history as read from the table."""

    instance_id: str
    execution_id: str | None
    events: tuple[ev.HistoryEvent, ...]
    sentinel_etag: str | None
    checkpoint_complete: bool = True
    # Rows of this generation beyond its committed events: left by a checkpoint that failed
    # between its transactions. Not history; the next checkpoint deletes what it does not overwrite.
    uncommitted_row_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Generation:
    """The rows of the current (or a chosen) generation, split at what was committed."""

    execution_id: str | None
    committed: list[Mapping[str, Any]]
    uncommitted: list[Mapping[str, Any]]
    sentinel: Mapping[str, Any] | None


def select_generation(rows: Sequence[Mapping[str, Any]], execution_id: str | None) -> Generation:
    """Pick the current generation: the sentinel's ExecutionId (or the first row's), rows in
    RowKey order up to the first row of another generation (stale rows of a longer old one),
    and of those only the sentinel's committed count when it records one (durablehub writes it;
    hubs written by others have all their rows taken)."""
    sentinel = next((r for r in rows if r["RowKey"] == SENTINEL_ROW_KEY), None)
    events = sorted((r for r in rows if r["RowKey"] != SENTINEL_ROW_KEY), key=lambda r: r["RowKey"])
    current = (
        execution_id
        or (sentinel or {}).get("ExecutionId")
        or (events[0].get("ExecutionId") if events else None)
    )
    selected: list[Mapping[str, Any]] = []
    for r in events:
        if r.get("ExecutionId") != current:
            break
        selected.append(r)
    committed = (sentinel or {}).get(COMMITTED_EVENT_COUNT)
    if isinstance(committed, int) and sentinel is not None and sentinel.get("ExecutionId") == current:
        done = [r for r in selected if int(r["RowKey"], 16) < committed]
        return Generation(current, done, selected[len(done) :], sentinel)
    return Generation(current, selected, [], sentinel)


# --------------------------------------------------------------------------- Instances rows


def instance_key(instance_id: str) -> dict[str, str]:
    return {"PartitionKey": escape_partition_key(instance_id), "RowKey": ""}


def pending_instance_row(
    *,
    task_hub: str,
    started: ev.ExecutionStarted,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The row a client writes when it schedules a new instance (status Pending)."""
    now = now or datetime.now(UTC)
    oi = started.orchestration_instance
    row: dict[str, Any] = {
        **instance_key(oi.instance_id),
        "ExecutionId": oi.execution_id,
        "Name": started.name,
        "Version": started.version or "",
        "Input": started.input if started.input is not None else "null",
        "CreatedTime": started.timestamp,
        "LastUpdatedTime": now,
        "RuntimeStatus": OrchestrationStatus.PENDING.table_name,
        "TaskHubName": task_hub,
        "Generation": started.generation or 0,
        "Tags": _json_text(started.tags) if started.tags else "null",
        "CustomStatus": "null",
    }
    if started.scheduled_start_time is not None:
        row["ScheduledStartTime"] = started.scheduled_start_time
    return row


def checkpoint_instance_row(
    *,
    task_hub: str,
    instance_id: str,
    execution_id: str,
    new_events: Iterable[ev.HistoryEvent],
    custom_status: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The columns an episode's checkpoint merges into the Instances row (§3, write table)."""
    now = now or datetime.now(UTC)
    row: dict[str, Any] = {
        **instance_key(instance_id),
        "ExecutionId": execution_id,
        "TaskHubName": task_hub,
        "CustomStatus": custom_status if custom_status is not None else "null",
        "LastUpdatedTime": now,
    }
    for event in new_events:
        row["LastUpdatedTime"] = max(row["LastUpdatedTime"], event.timestamp)
        if isinstance(event, ev.ExecutionStarted):
            row.update(
                Name=event.name,
                Version=event.version or "",
                CreatedTime=event.timestamp,
                RuntimeStatus=OrchestrationStatus.RUNNING.table_name,
                Tags=_json_text(event.tags) if event.tags else "null",
                Generation=event.generation or 0,
                Input=event.input if event.input is not None else "null",
            )
            if event.scheduled_start_time is not None:
                row["ScheduledStartTime"] = event.scheduled_start_time
        elif isinstance(event, (ev.ExecutionCompleted, ev.ContinueAsNew)):
            row["RuntimeStatus"] = event.orchestration_status.table_name
            if event.orchestration_status is not OrchestrationStatus.CONTINUED_AS_NEW:
                row["CompletedTime"] = now
            row["Output"] = (
                str(event.failure_details)
                if event.failure_details is not None
                else (event.result if event.result is not None else "null")
            )
        elif isinstance(event, ev.ExecutionTerminated):
            row.update(
                RuntimeStatus=OrchestrationStatus.TERMINATED.table_name,
                CompletedTime=now,
                Output=event.input if event.input is not None else "null",
            )
        elif isinstance(event, ev.ExecutionSuspended):
            row.update(RuntimeStatus=OrchestrationStatus.SUSPENDED.table_name, Output=event.reason or "")
        elif isinstance(event, ev.ExecutionResumed):
            row.update(RuntimeStatus=OrchestrationStatus.RUNNING.table_name, Output=event.reason or "")
        elif isinstance(event, ev.ExecutionRewound):
            # The failure is forgotten; CompletedTime stays until the instance ends again
            # (a merge cannot remove a column, and DTFx leaves it too).
            row.update(RuntimeStatus=OrchestrationStatus.RUNNING.table_name, Output="null")
    return row
