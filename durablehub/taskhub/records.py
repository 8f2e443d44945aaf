"""Typed records of the Instances table, for the runtime: what it reads and what it merges.

The runtime decides on an instance's row (is it the execution history says, is it terminated
before its start, how is a rewound parent's child doing) and writes a checkpoint's columns; it
does both through these records, so that column names, Edm types and the ``"null"`` convention
stay in ``taskhub/rows.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.models import OrchestrationStatus
from durablehub.taskhub import rows
from durablehub.taskhub.names import unescape_partition_key


def _text(value: Any) -> str | None:
    """A payload column as JSON text: None for absent, empty or the ``"null"`` convention."""
    return value if isinstance(value, str) and value not in ("", "null") else None


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRecord:
    """One Instances row as the runtime reads it (large values downloaded when asked for)."""

    instance_id: str
    execution_id: str | None
    runtime_status: OrchestrationStatus | None  # None: missing or not a status durablehub knows
    output: str | None = None
    custom_status: str | None = None
    etag: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InstanceRecord:
        try:
            status = OrchestrationStatus.from_table_name(row.get("RuntimeStatus") or "")
        except ValueError:
            status = None
        return cls(
            instance_id=unescape_partition_key(row["PartitionKey"]),
            execution_id=row.get("ExecutionId") or None,
            runtime_status=status,
            output=_text(row.get("Output")),
            custom_status=_text(row.get("CustomStatus")),
            etag=row.get("_etag", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceUpdate:
    """The columns a checkpoint merges into its instance's row, from the events it wrote.

    ``keep_custom_status``: the episode's custom status is not known (it timed out), the stored
    one stays. ``keep_created_time``: the row's CreatedTime stays (an entity's every batch
    starts a new execution, but the entity was created once).
    """

    instance_id: str
    execution_id: str
    events: Sequence[ev.HistoryEvent]
    custom_status: str | None = None
    keep_custom_status: bool = False
    keep_created_time: bool = False
    now: datetime | None = None

    def to_row(self, task_hub: str) -> dict[str, Any]:
        row = rows.checkpoint_instance_row(
            task_hub=task_hub,
            instance_id=self.instance_id,
            execution_id=self.execution_id,
            new_events=self.events,
            custom_status=self.custom_status,
            now=self.now,
        )
        if self.keep_custom_status:
            del row["CustomStatus"]
        if self.keep_created_time:
            row.pop("CreatedTime", None)
        return row

    @property
    def runtime_status(self) -> OrchestrationStatus | None:
        """The status this update writes; None if its events change none (the row's stays)."""
        status = self.to_row("").get("RuntimeStatus")
        return OrchestrationStatus.from_table_name(status) if status else None
