"""The JSON bodies of the Durable Functions HTTP API (python-sdks.md §5), built without I/O.

* ``management_urls``: the check-status body, ``id`` and the eight management URLs;
* ``status_payload``: what ``GET instances/{id}`` returns (``StatusResponsePayload``);
* ``entity_payload``: an entity as ``GET entities/{name}`` lists it;
* ``history_payload``: ``historyEvents`` shaped as Durable Functions shows them: PascalCase
  members, ``EventType`` by name, the OrchestratorStarted/Completed bookkeeping left out, and
  a completion carrying the ``FunctionName`` and ``ScheduledTime`` of what it completes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from durablehub.engine import history as ev
from durablehub.entities.metadata import EntityMetadata
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.state import OrchestrationState

API_PREFIX = "/runtime/webhooks/durabletask"
KEY_HEADER = "x-functions-key"  # the Functions host's key header
KEY_QUERY_PARAMETER = "code"  # as Functions clients send its keys
# Poll hints (seconds): DF's check-status response says 10, a running instance's status 5.
CHECK_STATUS_RETRY_AFTER = 10
STATUS_RETRY_AFTER = 5
RUNNING_STATUSES = frozenset(
    {
        OrchestrationStatus.RUNNING,
        OrchestrationStatus.PENDING,
        OrchestrationStatus.CONTINUED_AS_NEW,
        OrchestrationStatus.SUSPENDED,
    }
)
_BOOKKEEPING = (ev.OrchestratorStarted, ev.OrchestratorCompleted)
_PAYLOAD_FIELDS = frozenset({"input", "result", "details"})  # shown with showHistoryOutput only


def management_urls(
    base_url: str, instance_id: str, *, task_hub: str | None, key: str | None
) -> dict[str, str]:
    """The check-status body: all nine keys, as the Python SDKs emit them.

    ``base_url`` ends before ``/runtime/webhooks/durabletask``. The placeholders ``{eventName}``
    and ``{text}`` are left for the caller to fill in, as Durable Functions does.
    """
    root = f"{base_url.rstrip('/')}{API_PREFIX}/instances/{quote(instance_id, safe='')}"
    params: dict[str, str] = {}
    if task_hub:
        params["taskHub"] = task_hub
    if key:
        params[KEY_QUERY_PARAMETER] = key
    query = urlencode(params)

    def url(path: str, *, leading: str = "") -> str:
        parts = "&".join(p for p in (leading, query) if p)
        return f"{root}{path}" + (f"?{parts}" if parts else "")

    return {
        "id": instance_id,
        "statusQueryGetUri": url(""),
        "sendEventPostUri": url("/raiseEvent/{eventName}"),
        "terminatePostUri": url("/terminate", leading="reason={text}"),
        "rewindPostUri": url("/rewind", leading="reason={text}"),
        "purgeHistoryDeleteUri": url(""),
        "restartPostUri": url("/restart"),
        "suspendPostUri": url("/suspend", leading="reason={text}"),
        "resumePostUri": url("/resume", leading="reason={text}"),
    }


def iso(value: datetime | None) -> str | None:
    """``2024-05-01T12:00:00.123456Z``: UTC with a Z, as the Functions host writes times."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # written by another client as plain text: show it as it is


def status_payload(
    state: OrchestrationState,
    *,
    show_input: bool = True,
    history: Sequence[ev.HistoryEvent] | None = None,
    show_history_output: bool = False,
) -> dict[str, Any]:
    """``{name, instanceId, runtimeStatus, input, customStatus, output, createdTime, lastUpdatedTime}``.

    A failed instance's ``output`` is its failure as the Instances table's Output column holds
    it (``ErrorType: message``); ``failureDetails`` gives the structured form besides.
    """
    payload: dict[str, Any] = {
        "name": state.name,
        "instanceId": state.instance_id,
        "runtimeStatus": state.runtime_status.table_name,
    }
    if state.version:  # durablehub's addition: only instances started with a version have it
        payload["version"] = state.version
    if show_input:
        payload["input"] = _decoded(state.serialized_input)
    payload["customStatus"] = _decoded(state.serialized_custom_status)
    if state.failure_details is not None:
        payload["output"] = str(state.failure_details)
        payload["failureDetails"] = failure_payload(state.failure_details)
    else:
        payload["output"] = _decoded(state.serialized_output)
    payload["createdTime"] = iso(state.created_at)
    payload["lastUpdatedTime"] = iso(state.last_updated_at)
    if history is not None:
        payload["historyEvents"] = history_payload(history, show_output=show_history_output)
    return payload


def failure_payload(details: FailureDetails) -> dict[str, Any]:
    return {
        "errorType": details.error_type,
        "errorMessage": details.message,
        "stackTrace": details.stack_trace,
        "innerFailure": failure_payload(details.inner_failure) if details.inner_failure else None,
        "isNonRetriable": details.is_non_retriable,
    }


def history_payload(events: Sequence[ev.HistoryEvent], *, show_output: bool) -> list[dict[str, Any]]:
    scheduled: dict[int, ev.HistoryEvent] = {
        e.event_id: e for e in events if isinstance(e, (ev.TaskScheduled, ev.SubOrchestrationInstanceCreated))
    }
    answered = {
        getattr(e, "task_scheduled_id", None)
        for e in events
        if isinstance(
            e,
            (
                ev.TaskCompleted,
                ev.TaskFailed,
                ev.SubOrchestrationInstanceCompleted,
                ev.SubOrchestrationInstanceFailed,
            ),
        )
    }
    folded = {id(e) for e in scheduled.values() if e.event_id in answered}
    shown = []
    for event in events:
        if isinstance(event, _BOOKKEEPING):
            continue
        if id(event) in folded:
            continue  # shown with its completion, as DF shows it
        item = event_payload(event, show_output=show_output)
        origin = scheduled.get(getattr(event, "task_scheduled_id", -2))
        if origin is not None:
            item["FunctionName"] = getattr(origin, "name", None)
            item["ScheduledTime"] = iso(origin.timestamp)
            if isinstance(origin, ev.SubOrchestrationInstanceCreated):
                item["InstanceId"] = origin.instance_id
        shown.append(item)
    return shown


def event_payload(event: ev.HistoryEvent, *, show_output: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"EventType": event.event_type.name, "EventId": event.event_id}
    item["Timestamp"] = iso(event.timestamp)
    for f in dataclasses.fields(event):
        if f.name in ("event_id", "timestamp", "is_played"):
            continue
        if f.name in _PAYLOAD_FIELDS and not show_output:
            continue
        value = getattr(event, f.name)
        if value is None:
            continue
        column = "FunctionName" if f.name == "name" else _pascal(f.name)
        item[column] = _json_value(f.name, value)
    return item


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _json_value(field_name: str, value: Any) -> Any:
    if field_name in _PAYLOAD_FIELDS and isinstance(value, str):
        return _decoded(value)
    if isinstance(value, OrchestrationStatus):
        return value.table_name
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, FailureDetails):
        return failure_payload(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_pascal(k): _json_value(k, v) for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, Mapping):
        return dict(value)
    return value


def entity_state(serialized_state: str | None) -> Any:
    """An entity's state as JSON (text another client wrote as plain text is shown as it is)."""
    return _decoded(serialized_state)


def entity_payload(metadata: EntityMetadata, *, show_state: bool) -> dict[str, Any]:
    """One entity as ``GET entities/{name}`` lists it (Durable Functions' ``DurableEntityStatus``):
    ``{entityId: {name, key}, lastOperationTime, backlogQueueSize, lockedBy, state?}``."""
    payload: dict[str, Any] = {
        "entityId": {"name": metadata.id.name, "key": metadata.id.key},
        "lastOperationTime": iso(metadata.last_modified),
        "backlogQueueSize": metadata.backlog_queue_size,
        "lockedBy": metadata.locked_by,
    }
    if show_state:
        payload["state"] = entity_state(metadata.serialized_state)
    return payload
