"""Stand-ins for a worker (no worker exists in these tests) and raw views of what the client wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.queue import QueueClient

from durablehub.engine import history as ev
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import rows
from durablehub.taskhub.names import unescape_partition_key


def queue_client(settings: TaskHubSettings, name: str) -> QueueClient:
    assert settings.connection_string is not None
    return QueueClient.from_connection_string(settings.connection_string.get_secret_value(), name)


def visible_bodies(settings: TaskHubSettings, name: str) -> list[dict[str, Any]]:
    """The visible messages of a queue, parsed, without dequeuing them."""
    with queue_client(settings, name) as queue:
        return [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]


def message_count(settings: TaskHubSettings, name: str) -> int:
    """All messages of a queue, invisible ones included."""
    with queue_client(settings, name) as queue:
        return int(queue.get_queue_properties().approximate_message_count or 0)


def counts(settings: TaskHubSettings) -> dict[str, int]:
    names = settings.names
    return {q: message_count(settings, q) for q in [*names.control_queues, names.work_item_queue]}


def clear_queue(settings: TaskHubSettings, name: str) -> None:
    """What a worker does when it has consumed the start message."""
    with queue_client(settings, name) as queue:
        queue.clear_messages()


def started_from(row: dict[str, Any]) -> ev.ExecutionStarted:
    """The ExecutionStarted a worker would have appended for the instance's current row."""
    instance_id = unescape_partition_key(row["PartitionKey"])
    return ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(
            instance_id=instance_id, execution_id=row["ExecutionId"]
        ),
        name=row["Name"],
        input=None if row.get("Input") in (None, "null") else row["Input"],
        timestamp=row["CreatedTime"],
        generation=row.get("Generation"),
    )


def checkpoint_row(
    task_hub: str, row: dict[str, Any], *events: ev.HistoryEvent, custom_status: str | None = None
) -> dict[str, Any]:
    """The Instances merge of an episode that started the instance and appended ``events``."""
    started = started_from(row)
    return rows.checkpoint_instance_row(
        task_hub=task_hub,
        instance_id=started.orchestration_instance.instance_id,
        execution_id=row["ExecutionId"],
        new_events=[started, *events],
        custom_status=custom_status,
    )


def history_events(row: dict[str, Any], *events: ev.HistoryEvent) -> list[ev.HistoryEvent]:
    """A complete first episode: OrchestratorStarted, ExecutionStarted, ``events``, OrchestratorCompleted."""
    return [ev.OrchestratorStarted(), started_from(row), *events, ev.OrchestratorCompleted()]


def finished(status: OrchestrationStatus) -> ev.HistoryEvent:
    """The event that takes an instance to ``status``."""
    if status is OrchestrationStatus.TERMINATED:
        return ev.ExecutionTerminated(input='"stopped by test"')
    if status is OrchestrationStatus.FAILED:
        return ev.ExecutionCompleted(
            event_id=1,
            orchestration_status=status,
            failure_details=FailureDetails(message="boom", error_type="E"),
        )
    return ev.ExecutionCompleted(event_id=1, orchestration_status=status, result='"done"')


def utc_now() -> datetime:
    return datetime.now(UTC)


def close_to(a: datetime | None, b: datetime, tolerance: timedelta = timedelta(milliseconds=1)) -> bool:
    return a is not None and abs(a - b) <= tolerance
