"""Everything the orchestration clients do without I/O, written once for both of them.

``DurableClient`` and ``AsyncDurableClient`` only move what this module builds to and from
storage: argument checks, the ExecutionStarted and EventRaised envelopes, the Pending
Instances row, the reuse-policy decision, Instances row → ``OrchestrationState``, and the
polling schedule of the ``wait_*`` methods.

Starting an instance follows the reference (taskhub-layout.md §3, item 1): read the existing
row, enqueue the ExecutionStarted message, then insert the Pending row (or replace the old one
under its ETag, Generation + 1). If the insert or replace loses a race (409/412/404), the row
is read again: carrying our ExecutionId means a worker dequeued the message and checkpointed
before our insert, and the start succeeded; otherwise another start won, our message is
withdrawn and the decision is taken again on the new row (``START_ATTEMPTS`` times at most).
If a worker dequeued our message before we could withdraw it, its ExecutionId matches no row
and the worker's ExecutionStarted de-dupe (taskhub-layout.md §6.4) discards it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, check_size
from durablehub.errors import (
    OrchestrationAlreadyExistsError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
)
from durablehub.instance_ids import check_instance_id as check_instance_id  # the clients call core.*
from durablehub.instance_ids import check_new_instance_id as check_new_instance_id
from durablehub.instance_ids import check_no_control
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.state import OrchestrationIdReusePolicy, OrchestrationState
from durablehub.task import get_name
from durablehub.taskhub import rows
from durablehub.taskhub.envelope import MessageData, TaskMessage
from durablehub.taskhub.names import unescape_partition_key

_LOG = logging.getLogger("durablehub.client")
# A queue message can be hidden for less than 7 days; DF caps delays at 6 (taskhub-layout.md §4.5).
MAX_START_DELAY = timedelta(days=6)
START_ATTEMPTS = 3
POLL_FIRST_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0
POLL_GROWTH = 0.125  # a wait's reads come at most this share of the instance's age apart
DEFAULT_REUSE_POLICY = OrchestrationIdReusePolicy()
# The reference's clients send as EmptySourceInstance: Sender {"InstanceId":"","ExecutionId":""}.
CLIENT_SENDER = ev.OrchestrationInstance(instance_id="", execution_id="")
COMPLETION_EVENT = ev.EventType.ExecutionCompleted
_LOST_RACE_STATUS = frozenset({404, 409, 412})  # row deleted, inserted or changed since we read it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------- argument checks


def check_timeout(timeout: float | timedelta | None) -> float | None:
    """Seconds to wait (None: no limit)."""
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
    return float(seconds)


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes are taken as UTC (datetime.utcnow() is common in Durable Functions code).
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# -------------------------------------------------------------------------------------- start


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRequest:
    """A checked ``schedule_new_orchestration`` call; the input is already JSON text."""

    instance_id: str
    name: str
    input: str | None
    version: str | None
    tags: dict[str, str] | None
    start_at: datetime | None
    policy: OrchestrationIdReusePolicy
    fresh_id: bool = False  # drawn here (uuid4): no instance can hold it yet


def prepare_start(
    orchestrator: Any,
    *,
    input: Any,
    instance_id: str | None,
    start_at: datetime | None,
    reuse_id_policy: OrchestrationIdReusePolicy | None,
    tags: Mapping[str, str] | None,
    version: str | None,
    now: datetime | None = None,
    max_payload_bytes: int | None = None,
) -> StartRequest:
    """Check every argument and encode the input, before anything is written.

    Raises:
        ValueError: a bad instance id, orchestrator name or start time (more than 6 days ahead).
        TypeError: tags, version or policy of the wrong type.
        PayloadError: the input is not JSON-serializable.
        PayloadTooLargeError: its JSON is longer than ``max_payload_bytes``.
    """
    name = get_name(orchestrator)
    if not name:
        raise ValueError("orchestrator name must be a non-empty string")
    check_no_control(name, "orchestrator name")
    iid = uuid.uuid4().hex if instance_id is None else check_new_instance_id(instance_id)
    if version is not None and not isinstance(version, str):
        raise TypeError(f"version must be a string, got {type(version).__name__}")
    if version:
        check_no_control(version, "version")
    if reuse_id_policy is not None and not isinstance(reuse_id_policy, OrchestrationIdReusePolicy):
        raise TypeError(
            f"reuse_id_policy must be an OrchestrationIdReusePolicy, got {type(reuse_id_policy).__name__}"
        )
    checked_tags: dict[str, str] | None = None
    if tags is not None:
        checked_tags = dict(tags)
        wrong = [k for k, v in checked_tags.items() if not isinstance(k, str) or not isinstance(v, str)]
        if wrong:
            raise TypeError(
                f"tags must map strings to strings (as the C# reader expects); bad keys {wrong!r}"
            )
    if start_at is not None:
        if not isinstance(start_at, datetime):
            raise TypeError(f"start_at must be a datetime, got {type(start_at).__name__}")
        start_at = _as_utc(start_at)
        if start_at - (now or datetime.now(UTC)) > MAX_START_DELAY:
            raise ValueError(
                f"start_at {start_at.isoformat()} is more than {MAX_START_DELAY.days} days ahead, the "
                "longest a queue message can wait; start the orchestration now and have it wait "
                "with ctx.create_timer(start_at), which chains long timers"
            )
    what = f"input of orchestration {name!r}"
    encoded = check_size(JSON_CODEC.encode(input, what=what), what=what, max_bytes=max_payload_bytes)
    return StartRequest(
        instance_id=iid,
        name=name,
        input=encoded,
        version=version,
        tags=checked_tags or None,
        start_at=start_at,
        policy=reuse_id_policy or DEFAULT_REUSE_POLICY,
        fresh_id=instance_id is None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPlan:
    """The writes of one start attempt: the message to enqueue, then the row to insert/replace."""

    started: ev.ExecutionStarted
    message: MessageData
    visible_after: timedelta | None
    replace_etag: str | None  # the existing row's ETag, or None to insert a new row

    @property
    def instance_id(self) -> str:
        return self.started.orchestration_instance.instance_id

    @property
    def execution_id(self) -> str | None:
        return self.started.orchestration_instance.execution_id


def plan_start(
    request: StartRequest,
    existing: Mapping[str, Any] | None,
    *,
    now: datetime | None = None,
    trace_context: dict[str, Any] | None = None,
) -> StartPlan:
    """Decide against the existing Instances row and build the ExecutionStarted message.

    Raises:
        OrchestrationAlreadyExistsError: the row exists in a status the policy does not replace.
    """
    now = now or datetime.now(UTC)
    generation = 0
    if existing is not None:
        status = status_of(existing)
        if status is None or not request.policy.allows_replacing(status):
            raise OrchestrationAlreadyExistsError(
                request.instance_id, status.table_name if status else str(existing.get("RuntimeStatus"))
            )
        generation = int(existing.get("Generation") or 0) + 1
    instance = ev.OrchestrationInstance(instance_id=request.instance_id, execution_id=uuid.uuid4().hex)
    started = ev.ExecutionStarted(
        timestamp=now,
        orchestration_instance=instance,
        name=request.name,
        version=request.version,
        input=request.input,
        tags=request.tags,
        scheduled_start_time=request.start_at,
        generation=generation,  # in the message too, as the reference sets it before sending
        parent_trace_context=trace_context,  # the client's create_orchestration span
    )
    delay = request.start_at - now if request.start_at is not None else None
    return StartPlan(
        started=started,
        message=MessageData(
            task_message=TaskMessage(event=started, orchestration_instance=instance), sender=CLIENT_SENDER
        ),
        visible_after=min(delay, MAX_START_DELAY) if delay is not None and delay > timedelta(0) else None,
        replace_etag=existing.get("_etag") if existing is not None else None,
    )


def pending_row(
    plan: StartPlan, *, task_hub: str, input_url: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """The Pending row. When the start message went to a blob, ``Input`` is that blob's URL."""
    row = rows.pending_instance_row(task_hub=task_hub, started=plan.started, now=now)
    if input_url is not None:
        row["Input"] = input_url
    return row


def is_lost_race(exc: BaseException) -> bool:
    """An insert/replace that failed because the row changed since it was read."""
    return getattr(exc, "status_code", None) in _LOST_RACE_STATUS


def started_by_us(plan: StartPlan, current: Mapping[str, Any] | None) -> bool:
    """After a lost race: does the row carry our execution (a worker ran ahead of our insert)?"""
    return current is not None and current.get("ExecutionId") == plan.execution_id


def start_gave_up(request: StartRequest) -> OrchestrationStateError:
    return OrchestrationStateError(
        f"could not start orchestration instance {request.instance_id!r}: its Instances row changed "
        f"{START_ATTEMPTS} times while the start was being written; try again",
        instance_id=request.instance_id,
    )


# ------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedEvent:
    name: str
    input: str | None


def prepare_event(event_name: Any, data: Any, *, max_payload_bytes: int | None = None) -> PreparedEvent:
    """Check the name and encode the data (at most ``max_payload_bytes``), before anything is
    read or written."""
    if not isinstance(event_name, str) or not event_name:
        raise ValueError(f"event_name must be a non-empty string, got {event_name!r}")
    check_no_control(event_name, "event name")
    what = f"data of event {event_name!r}"
    encoded = check_size(JSON_CODEC.encode(data, what=what), what=what, max_bytes=max_payload_bytes)
    return PreparedEvent(name=event_name, input=encoded)


def plan_event(
    instance_id: str,
    event: PreparedEvent,
    row: Mapping[str, Any] | None,
    *,
    checked: bool = True,
    now: datetime | None = None,
    trace_context: dict[str, Any] | None = None,
) -> MessageData:
    """The EventRaised message for a live instance, addressed to no particular generation.
    Unless ``checked``, ``row`` is not looked at (the caller did not read it).

    Raises:
        OrchestrationNotFoundError: no such instance.
        OrchestrationStateError: the instance has finished (the event would be discarded).
    """
    status = status_of(require_row(instance_id, row)) if checked else None
    if status is not None and status.is_terminal:
        raise OrchestrationStateError(
            f"orchestration instance {instance_id!r} is {status.table_name}; events sent to a "
            f"finished instance are discarded, so event {event.name!r} was not sent",
            instance_id=instance_id,
            status=status.table_name,
        )
    raised = ev.EventRaised(
        name=event.name,
        input=event.input,
        timestamp=now or datetime.now(UTC),
        parent_trace_context=trace_context,
    )
    # ExecutionId None: the event joins whichever generation is current (ContinueAsNew included).
    target = ev.OrchestrationInstance(instance_id=instance_id, execution_id=None)
    return MessageData(
        task_message=TaskMessage(event=raised, orchestration_instance=target), sender=CLIENT_SENDER
    )


def require_row(instance_id: str, row: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if row is None:
        raise OrchestrationNotFoundError(instance_id)
    return row


# -------------------------------------------------------------------------------------- state


def status_of(row: Mapping[str, Any] | None) -> OrchestrationStatus | None:
    if row is None or not row.get("RuntimeStatus"):
        return None
    try:
        return OrchestrationStatus.from_table_name(row["RuntimeStatus"])
    except ValueError:
        return None


def execution_id_of(row: Mapping[str, Any]) -> str | None:
    return row.get("ExecutionId") or None


def instance_id_of(row: Mapping[str, Any]) -> str:
    return unescape_partition_key(row["PartitionKey"])


def input_of(row: Mapping[str, Any]) -> str | None:
    """The input as JSON text (large values already downloaded), None when there is none."""
    return _payload(row.get("Input"))


def tags_of(row: Mapping[str, Any]) -> dict[str, str] | None:
    return _tags(row.get("Tags"))


def failed_execution_id(row: Mapping[str, Any]) -> str | None:
    """The execution whose ExecutionCompleted event to read for full failure details, if any."""
    return execution_id_of(row) if status_of(row) is OrchestrationStatus.FAILED else None


def state_from_row(
    instance_id: str,
    row: Mapping[str, Any],
    *,
    fetch_payloads: bool,
    completion: Sequence[ev.HistoryEvent] = (),
) -> OrchestrationState:
    """Map an Instances row (large values already downloaded) onto ``OrchestrationState``.

    A failed instance's details come from its ExecutionCompleted event (``completion``), which
    has the stack trace and inner failures; else from ``Output`` (``"ErrorType: message"``).
    """
    status = status_of(row)
    if status is None:
        raise ValueError(
            f"Instances row of {instance_id!r} has unknown RuntimeStatus {row.get('RuntimeStatus')!r}"
        )
    failure = None
    # Output is the output only once the instance has ended: while it lives, the column holds
    # the reason of the last suspend or resume (the reference writes it there).
    output = _payload(row.get("Output")) if fetch_payloads and status.is_terminal else None
    if status is OrchestrationStatus.FAILED:
        failure = _failure_from_history(completion) or _failure_from_output(row.get("Output"))
        output = None
    created = _utc(row.get("CreatedTime")) or _utc(row.get("LastUpdatedTime")) or _EPOCH
    return OrchestrationState(
        instance_id=instance_id,
        name=row.get("Name") or "",
        runtime_status=status,
        created_at=created,
        last_updated_at=_utc(row.get("LastUpdatedTime")) or created,
        serialized_input=_payload(row.get("Input")) if fetch_payloads else None,
        serialized_output=output,
        serialized_custom_status=_payload(row.get("CustomStatus")) if fetch_payloads else None,
        failure_details=failure,
        execution_id=execution_id_of(row),
        scheduled_start_time=_utc(row.get("ScheduledStartTime")),
        completed_at=_utc(row.get("CompletedTime")),
        version=row.get("Version") or None,
        tags=_tags(row.get("Tags")),
    )


def states_from_rows(found: Sequence[Mapping[str, Any]], *, fetch_payloads: bool) -> list[OrchestrationState]:
    """Query rows as states; a row without a known status (written by another tool, or caught
    mid-repair) is logged and left out rather than failing the whole page."""
    states = []
    for row in found:
        instance_id = instance_id_of(row)
        try:
            states.append(state_from_row(instance_id, row, fetch_payloads=fetch_payloads))
        except ValueError as exc:
            _LOG.warning("leaving %r out of the query result: %s", instance_id, exc)
    return states


def _payload(text: Any) -> str | None:
    # "null" is how the reference stores "nothing" (merges ignore null properties, #477).
    return text if isinstance(text, str) and text not in ("", "null") else None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    value = _as_utc(value)
    # A plain datetime, not the tables SDK's TablesEntityDatetime subclass.
    v = value
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def _tags(text: Any) -> dict[str, str] | None:
    if not isinstance(text, str) or text in ("", "null"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def _failure_from_history(events: Sequence[ev.HistoryEvent]) -> FailureDetails | None:
    for event in reversed(events):
        if isinstance(event, ev.ExecutionCompleted) and event.failure_details is not None:
            return event.failure_details
    return None


def _failure_from_output(output: Any) -> FailureDetails:
    text = output if isinstance(output, str) else ""
    error_type, sep, message = text.partition(": ")  # FailureDetails.ToString() in DurableTask.Core
    return (
        FailureDetails(message=message, error_type=error_type)
        if sep
        else FailureDetails(message=text, error_type="")
    )


# -------------------------------------------------------------------------------------- waits


def is_started(status: OrchestrationStatus | None) -> bool:
    return status is not None and status is not OrchestrationStatus.PENDING


def is_complete(status: OrchestrationStatus | None) -> bool:
    # ContinuedAsNew is not complete: the instance goes on with a new generation.
    return status is not None and status.is_terminal


class PollSchedule:
    """The delays between the status reads of one wait: an eighth of the instance's age (from
    its row's CreatedTime, at least the time waited), at least 50 ms and at most 1 s. A
    completion is noticed at most 50 ms or 12.5% of the instance's age after it happens
    (doubling from 50 ms noticed it up to 100% late: 750 ms for a 400 ms orchestration), for
    15 reads in a 800 ms wait, about 30 in an instance's first 8 s and one a second after
    that (a quarter of its age: 10 reads, and twice as late): a wait on an
    instance that has run a while costs a read a second from its start. Once the wait has
    seen the instance go from Pending to running, the time it was Pending counts a quarter:
    a start that waited for a backed-off poller (up to the workers' polling ceiling) makes its
    completion noticed hardly later, and one that waited long behind others still costs a
    read a second, not a new ramp."""

    def __init__(self) -> None:
        self._seen_pending = False
        self._started_at_age: float | None = None

    def after(self, status: OrchestrationStatus | None, *, waited: float, age: float | None) -> float:
        """The delay before the next read, after one at ``waited`` s into the wait found
        ``status`` on a row created ``age`` s before (None: no row)."""
        age = waited if age is None else max(age, waited)  # a clock behind ours: our wait
        if status is None or status is OrchestrationStatus.PENDING:
            self._seen_pending = True
        elif self._seen_pending and self._started_at_age is None:
            self._started_at_age = age  # about the time it was Pending
        if self._started_at_age is not None:
            age -= 0.75 * self._started_at_age
        return min(max(POLL_FIRST_SECONDS, POLL_GROWTH * age), POLL_MAX_SECONDS)


def age_of(row: Mapping[str, Any] | None, now: datetime) -> float | None:
    """Seconds since the row's CreatedTime (None without a row or a time)."""
    created = _utc(row.get("CreatedTime")) if row is not None else None
    return None if created is None else (now - created).total_seconds()


def wait_timed_out(
    instance_id: str, goal: str, timeout: float, status: OrchestrationStatus | None
) -> TimeoutError:
    last = status.table_name if status is not None else "not found"
    return TimeoutError(
        f"orchestration instance {instance_id!r} did not {goal} within {timeout:g} s (last status: {last})"
    )
