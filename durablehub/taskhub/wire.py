"""How engine values are spelled on the wire: the conventions shared by rows and envelopes.

DurableTask.Core's ``[DataMember]`` names are the C# member names, i.e. our snake_case field
names in PascalCase. Nested objects are JSON with PascalCase keys; in queue messages they
also carry ``$type`` first (``typed=True``), in table columns they do not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from durablehub.engine.history import OrchestrationInstance, ParentInstance
from durablehub.errors import MalformedMessageError
from durablehub.models import FailureDetails

CORE = "DurableTask.Core"
TYPE_ORCHESTRATION_INSTANCE = f"{CORE}.OrchestrationInstance"
TYPE_PARENT_INSTANCE = f"{CORE}.ParentInstance"
TYPE_FAILURE_DETAILS = f"{CORE}.FailureDetails"
TYPE_TRACE_CONTEXT = f"{CORE}.Tracing.DistributedTraceContext"
TRACE_CONTEXT_MEMBERS = ("TraceParent", "TraceState", "Id", "SpanId", "ActivityStartTime")
TYPE_STRING_DICT = (
    "System.Collections.Generic.Dictionary`2[[System.String, System.Private.CoreLib],"
    "[System.String, System.Private.CoreLib]]"
)

# Event fields whose C# type is a class: stored as JSON text in tables ("null" when absent).
OBJECT_FIELDS = frozenset(
    {"orchestration_instance", "parent_instance", "tags", "parent_trace_context", "failure_details", "state"}
)
DATETIME_FIELDS = frozenset({"fire_at", "scheduled_start_time"})
STATUS_FIELDS = frozenset({"orchestration_status"})
BASE_FIELDS = frozenset({"event_id", "timestamp", "is_played"})

_SPECIAL_PASCAL = {"task_schedule_id": "TaskScheduleId"}


def pascal(name: str) -> str:
    """``task_scheduled_id`` → ``TaskScheduledId``."""
    return _SPECIAL_PASCAL.get(name) or "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _with_type(type_name: str, body: dict[str, Any], typed: bool) -> dict[str, Any]:
    return {"$type": type_name, **body} if typed else body


def instance_to_json(value: OrchestrationInstance, *, typed: bool) -> dict[str, Any]:
    return _with_type(
        TYPE_ORCHESTRATION_INSTANCE,
        {"InstanceId": value.instance_id, "ExecutionId": value.execution_id},
        typed,
    )


def instance_from_json(data: dict[str, Any]) -> OrchestrationInstance:
    try:
        return OrchestrationInstance(instance_id=data["InstanceId"], execution_id=data.get("ExecutionId"))
    except (KeyError, TypeError) as exc:
        raise MalformedMessageError(f"OrchestrationInstance without InstanceId: {data!r:.200}") from exc


def parent_to_json(value: ParentInstance, *, typed: bool) -> dict[str, Any]:
    return _with_type(
        TYPE_PARENT_INSTANCE,
        {
            "Name": value.name,
            "OrchestrationInstance": instance_to_json(value.orchestration_instance, typed=typed),
            "TaskScheduleId": value.task_schedule_id,
            "Version": value.version,
        },
        typed,
    )


def parent_from_json(data: dict[str, Any]) -> ParentInstance:
    return ParentInstance(
        name=data.get("Name"),
        orchestration_instance=instance_from_json(data["OrchestrationInstance"]),
        task_schedule_id=int(data.get("TaskScheduleId", -1)),
        version=data.get("Version"),
    )


def failure_to_json(value: FailureDetails, *, typed: bool) -> dict[str, Any]:
    return _with_type(
        TYPE_FAILURE_DETAILS,
        {
            "ErrorType": value.error_type,
            "ErrorMessage": value.message,
            "StackTrace": value.stack_trace,
            "InnerFailure": failure_to_json(value.inner_failure, typed=typed)
            if value.inner_failure
            else None,
            "IsNonRetriable": value.is_non_retriable,
            "Properties": value.properties,
        },
        typed,
    )


def failure_from_json(data: dict[str, Any]) -> FailureDetails:
    inner = data.get("InnerFailure")
    return FailureDetails(
        message=data.get("ErrorMessage") or "",
        error_type=data.get("ErrorType") or "",
        stack_trace=data.get("StackTrace"),
        inner_failure=failure_from_json(inner) if isinstance(inner, dict) else None,
        is_non_retriable=bool(data.get("IsNonRetriable", False)),
        properties=data.get("Properties"),
    )


def object_to_json(field_name: str, value: Any, *, typed: bool) -> Any:
    """A nested object of an event as JSON-able data (None stays None)."""
    if value is None:
        return None
    if field_name == "orchestration_instance":
        return instance_to_json(value, typed=typed)
    if field_name == "parent_instance":
        return parent_to_json(value, typed=typed)
    if field_name == "failure_details":
        return failure_to_json(value, typed=typed)
    if field_name == "tags":
        return _with_type(TYPE_STRING_DICT, dict(value), typed)
    if field_name == "parent_trace_context":
        # DistributedTraceContext's members, all written (null when unset), as Newtonsoft does.
        members = {k: value.get(k) for k in TRACE_CONTEXT_MEMBERS}
        extra = {k: v for k, v in value.items() if k != "$type" and k not in members}
        return _with_type(TYPE_TRACE_CONTEXT, {**members, **extra}, typed)
    return value


def object_from_json(field_name: str, data: Any) -> Any:
    if data is None:
        return None
    if field_name == "orchestration_instance":
        return instance_from_json(data)
    if field_name == "parent_instance":
        return parent_from_json(data)
    if field_name == "failure_details":
        return failure_from_json(data)
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k != "$type"}
    return data


def format_datetime(value: datetime) -> str:
    """ISO-8601 UTC with 7 fractional digits and ``Z``, as Newtonsoft writes a UTC DateTime."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse_datetime(text: str) -> datetime:
    """Parse ISO-8601 as written by .NET (up to 7 fractional digits, ``Z`` or an offset)."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    main, plus, offset = raw.partition("+")
    if not plus and raw.count("-") > 2:  # negative offset
        main, offset = raw[: raw.rfind("-")], raw[raw.rfind("-") :]
        tz = offset
    else:
        tz = ("+" + offset) if plus else ""
    if "." in main:
        head, frac = main.split(".", 1)
        main = f"{head}.{frac[:6].ljust(6, '0')}"
    parsed = datetime.fromisoformat(main + tz)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
