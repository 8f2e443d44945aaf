"""Spans with DurableTask.Core's names, kinds and attributes (its ``Tracing/TraceHelper.cs``).

Only the OpenTelemetry *API* is used here: without an SDK every call is a no-op. Which spans:

- ``create_orchestration:{name}`` (producer): a client schedules an instance.
- ``orchestration:{name}`` (server): one span over all of an instance's episodes and
  generations, child of the ``TraceParent`` its ``ExecutionStarted`` carries, with the id and
  start time the first episode stored there; exported once, by the episode that ends it.
- ``activity:{name}`` (client, from the orchestration, exported when its answer is recorded;
  server, around the activity code, current while it runs).
- ``orchestration:{name}`` (client) for a sub-orchestration, ``orchestration:{name}:timer``
  (internal), ``orchestration_event:{name}`` (producer).
- ``entity:{name}:{operation}``: client (a call, exported when its answer is recorded) or
  producer (a signal) from an orchestration or a client, whose context the request message
  carries (``parentTraceContext``); server (call) or consumer (signal) on the entity, its child.

Orchestration-side spans are emitted after the episode that records them is committed: a
replay, a redelivered message or an episode that lost its commit emits nothing. A span whose
id was fixed in the task hub before it ends gets that id through ``DurableIdGenerator``
(``durablehub.telemetry.provider``), the SDK's extension point for ids, which durablehub
installs on the SDK provider it finds, delegating to the provider's own generator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import traceback
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from durablehub.engine import history as ev
from durablehub.models import OrchestrationStatus
from durablehub.telemetry import trace_context as tc
from durablehub.telemetry.logs import mask_secrets

if TYPE_CHECKING:
    from durablehub.entities.messages import RequestMessage

__all__ = [
    "PINNED_SPAN_ID",
    "activity_span",
    "creating_orchestration",
    "episode_committed",
    "raising_event",
    "starting_execution",
    "tracing_enabled",
]

_LOG = logging.getLogger("durablehub.telemetry")
# durablehub's tracer and the provider it came from; made again when the global provider changes.
_tracer_of: tuple[object, trace.Tracer] | None = None

# The span id the next span started in this context must take (read by DurableIdGenerator).
PINNED_SPAN_ID: ContextVar[int | None] = ContextVar("durablehub_pinned_span_id", default=None)
_warned_unpinned = False

# Schema.cs
TYPE = "durabletask.type"
NAME = "durabletask.task.name"
VERSION = "durabletask.task.version"
INSTANCE_ID = "durabletask.task.instance_id"
EXECUTION_ID = "durabletask.task.execution_id"
STATUS = "durabletask.task.status"
TASK_ID = "durabletask.task.task_id"
TARGET_INSTANCE_ID = "durabletask.event.target_instance_id"
FIRE_AT = "durabletask.fire_at"
OPERATION = "durabletask.task.operation"
SCHEDULED_TIME = "durabletask.task.scheduled_time"


def _tracer() -> trace.Tracer:
    """durablehub's tracer from the global provider. The first time a provider is seen, an SDK
    ``TracerProvider`` made without durablehub's id generator (the ordinary setup, a vendor's
    one-call setup) is given one that delegates to its own, before the tracer is made: the
    SDK hands a tracer the generator its provider has then."""
    global _tracer_of
    provider = trace.get_tracer_provider()
    cached = _tracer_of
    if cached is not None and cached[0] is provider:
        return cached[1]
    if isinstance(provider, ProxyTracerProvider):  # none set yet: a no-op until one is
        return provider.get_tracer("durablehub")
    from durablehub.telemetry.provider import adopt_provider

    adopt_provider(provider)
    tracer = provider.get_tracer("durablehub")
    _tracer_of = (provider, tracer)
    return tracer


def tracing_enabled() -> bool:
    """Whether an SDK (or any real provider) is installed: the cheap test before any work."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)


def span_name(kind: str, name: str, version: str | None = None) -> str:
    """DTFx's ``CreateSpanName``: ``kind:name``, or ``kind:name@(version)``."""
    return f"{kind}:{name}@({version})" if version else f"{kind}:{name}"


def _ns(value: datetime) -> int:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000_000)


def _context(parent: tc.SpanRef | None) -> otel_context.Context | None:
    if parent is None:
        return None
    span_context = SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(parent.flags, 16)),
        trace_state=TraceState.from_header([parent.trace_state]) if parent.trace_state else None,
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def _ref(span: trace.Span) -> tc.SpanRef | None:
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    state = sc.trace_state.to_header() if sc.trace_state else None
    return tc.SpanRef(
        f"{sc.trace_id:032x}", f"{sc.span_id:016x}", f"{int(sc.trace_flags):02x}", state or None
    )


def _start(
    name: str,
    *,
    kind: SpanKind,
    parent: tc.SpanRef | None,
    attributes: Mapping[str, Any],
    start: datetime | None = None,
    span_id: str | None = None,
) -> trace.Span:
    token = PINNED_SPAN_ID.set(int(span_id, 16)) if span_id else None
    try:
        span = _tracer().start_span(
            name,
            context=_context(parent),
            kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None and v != ""},
            start_time=_ns(start) if start is not None else None,
        )
    finally:
        if token is not None:
            PINNED_SPAN_ID.reset(token)
    if span_id and span.is_recording() and span.get_span_context().span_id != int(span_id, 16):
        global _warned_unpinned
        if not _warned_unpinned:
            _warned_unpinned = True
            _LOG.warning(
                "the tracer provider ignores durablehub's span ids, so orchestration spans are not "
                "linked to their children: create it with "
                "TracerProvider(id_generator=durablehub.telemetry.provider.DurableIdGenerator())"
            )
    return span


def _emit(
    name: str,
    *,
    kind: SpanKind,
    parent: tc.SpanRef | None,
    attributes: Mapping[str, Any],
    start: datetime,
    end: datetime,
    span_id: str | None = None,
    error: str | None = None,
    ok: str | None = None,
) -> None:
    span = _start(name, kind=kind, parent=parent, attributes=attributes, start=start, span_id=span_id)
    if error is not None:
        span.set_status(_failed(error))
    elif ok is not None:
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=_ns(max(start, end)))


def _failed(description: str) -> Status:
    """An error status: a failure's message may quote a connection string or a SAS URL, so
    secrets are masked as in logs."""
    return Status(StatusCode.ERROR, mask_secrets(description))


@contextlib.contextmanager
def _current(span: trace.Span) -> Iterator[None]:
    """``span`` current within the block and ended after it; an exception that escapes is
    recorded on it with secrets masked (the SDK's own recording quotes its message as is)."""
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except Exception as exc:
            message = mask_secrets(str(exc))
            stack = mask_secrets("".join(traceback.format_exception(exc)))
            span.record_exception(
                exc, attributes={"exception.message": message, "exception.stacktrace": stack}, escaped=True
            )
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
            raise


# ----------------------------------------------------------------------------- clients


class TraceHandle:
    """What a client span gives the message it sends: its ``ParentTraceContext``."""

    def __init__(self, span: trace.Span | None, context: dict[str, Any] | None = None) -> None:
        self.span = span
        ref = _ref(span) if span is not None else None
        self.context: dict[str, Any] | None = tc.context_for(ref) if ref is not None else context

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None and self.span is not None:
            self.span.set_attribute(key, value)


# A client span made elsewhere (an SDK client talking to the sidecar) whose context the next
# start carries, instead of a span of durablehub's own.
_FORWARDED: ContextVar[dict[str, Any] | None] = ContextVar("durablehub_forwarded_context", default=None)


@contextlib.contextmanager
def forwarding(context: Mapping[str, Any] | None) -> Iterator[None]:
    """Within this block, ``creating_orchestration`` emits no span and hands on ``context``'s
    ``TraceParent`` and ``TraceState`` (when it names a valid span)."""
    parent = tc.parent_of(context)
    token = _FORWARDED.set(tc.context_for(parent) if parent is not None else None)
    try:
        yield
    finally:
        _FORWARDED.reset(token)


@contextlib.contextmanager
def creating_orchestration(name: str, version: str | None, instance_id: str) -> Iterator[TraceHandle]:
    """``create_orchestration:{name}`` (producer), a child of the caller's current span; its
    context goes into the ``ExecutionStarted`` (set ``execution_id`` when it is known)."""
    forwarded = _FORWARDED.get()
    if forwarded is not None:
        yield TraceHandle(None, forwarded)
        return
    span = _tracer().start_span(
        span_name("create_orchestration", name, version),
        kind=SpanKind.PRODUCER,
        attributes={TYPE: "orchestration", NAME: name, INSTANCE_ID: instance_id, **_version(version)},
    )
    with _current(span):
        yield TraceHandle(span)


@contextlib.contextmanager
def raising_event(name: str, instance_id: str) -> Iterator[TraceHandle]:
    """``orchestration_event:{name}`` (producer) of a client raising an event."""
    span = _tracer().start_span(
        span_name("orchestration_event", name),
        kind=SpanKind.PRODUCER,
        attributes={TYPE: "event", NAME: name, TARGET_INSTANCE_ID: instance_id},
    )
    with _current(span):
        yield TraceHandle(span)


@contextlib.contextmanager
def signaling_entity(instance_id: str, operation: str, scheduled: datetime | None) -> Iterator[TraceHandle]:
    """``entity:{name}:{operation}`` (producer) of a client signalling an entity, a child of
    the caller's current span; its context goes into the request message."""
    span = _tracer().start_span(
        entity_span_name(instance_id, operation),
        kind=SpanKind.PRODUCER,
        attributes={
            k: v for k, v in _entity_request_attributes(instance_id, True, scheduled).items() if v is not None
        },
    )
    with _current(span):
        yield TraceHandle(span)


def _version(version: str | None) -> dict[str, str]:
    return {VERSION: version} if version else {}


# ---------------------------------------------------------------------- orchestrations


def starting_execution(started: ev.ExecutionStarted, *, now: datetime) -> ev.ExecutionStarted:
    """The ``ExecutionStarted`` the first episode of an execution records: with the
    orchestration span's identity, and with a new trace when one is asked for (DTFx's
    ``GenerateNewTrace``) or, where tracing is on, when the start came without any."""
    context = started.parent_trace_context
    fresh = started.generate_new_trace or (tc.parent_of(context) is None and started.parent_instance is None)
    if fresh and tracing_enabled():
        oi = started.orchestration_instance
        span = _start(
            span_name("create_orchestration", started.name, started.version),
            kind=SpanKind.PRODUCER,
            parent=None,
            attributes={
                TYPE: "orchestration",
                NAME: started.name,
                INSTANCE_ID: oi.instance_id,
                EXECUTION_ID: oi.execution_id,
                **_version(started.version),
            },
            start=started.timestamp,
        )
        span.end(end_time=_ns(max(now, started.timestamp)))
        ref = _ref(span)
        if ref is not None:
            context = tc.context_for(ref)
            started = dataclasses.replace(started, generate_new_trace=False)
    filled = tc.with_orchestration_span(
        context, execution_id=started.orchestration_instance.execution_id, now=now
    )
    if filled == started.parent_trace_context:
        return started
    return dataclasses.replace(started, parent_trace_context=filled)


def episode_committed(
    *,
    started: ev.ExecutionStarted,
    past: Sequence[ev.HistoryEvent],
    new_events: Iterable[ev.HistoryEvent],
    runtime_status: OrchestrationStatus,
    now: datetime,
    new_trace: bool = False,
) -> None:
    """Emit the spans of one committed episode: ``new_events`` are what it recorded (incoming
    events, then the actions' events), ``past`` the history before it. ``new_trace``: it
    continued as new into a trace of its own, so the orchestration span ends here."""
    if not tracing_enabled():
        return
    own = tc.orchestration_span_of(started.parent_trace_context)
    if own is None:
        return
    oi = started.orchestration_instance
    new = list(new_events)
    scheduled = {e.event_id: e for e in past if isinstance(e, ev.TaskScheduled)}
    created = {e.event_id: e for e in past if isinstance(e, ev.SubOrchestrationInstanceCreated)}
    timers = {e.event_id: e for e in past if isinstance(e, ev.TimerCreated)}
    # An entity's answer is an event named after the request id; one delivered again is not a
    # second call.
    answered = {e.name for e in past if isinstance(e, ev.EventRaised)}
    for event in new:
        if isinstance(event, (ev.TaskCompleted, ev.TaskFailed)):
            task = scheduled.get(event.task_scheduled_id)
            client = tc.parent_of(task.parent_trace_context) if task is not None else None
            if task is None or client is None:
                continue
            _emit(
                span_name("activity", task.name, task.version),
                kind=SpanKind.CLIENT,
                parent=own,
                span_id=client.span_id,
                attributes={
                    TYPE: "activity",
                    NAME: task.name,
                    INSTANCE_ID: oi.instance_id,
                    TASK_ID: task.event_id,
                    **_version(task.version),
                },
                start=task.timestamp,
                end=now,
                error=(event.reason or "Unspecified task activity failure")
                if isinstance(event, ev.TaskFailed)
                else None,
            )
        elif isinstance(event, (ev.SubOrchestrationInstanceCompleted, ev.SubOrchestrationInstanceFailed)):
            sub = created.get(event.task_scheduled_id)
            if sub is None or not sub.client_span_id:
                continue
            _emit(
                span_name("orchestration", sub.name, sub.version),
                kind=SpanKind.CLIENT,
                parent=own,
                span_id=sub.client_span_id,
                attributes={
                    TYPE: "orchestration",
                    NAME: sub.name,
                    INSTANCE_ID: oi.instance_id,
                    **_version(sub.version),
                },
                start=sub.timestamp,
                end=now,
                error=(event.reason or "Unspecified sub-orchestration failure")
                if isinstance(event, ev.SubOrchestrationInstanceFailed)
                else None,
            )
        elif isinstance(event, ev.TimerFired):
            timer = timers.get(event.timer_id)
            _emit(
                f"orchestration:{started.name}:timer",
                kind=SpanKind.INTERNAL,
                parent=own,
                attributes={
                    TYPE: "timer",
                    NAME: started.name,
                    INSTANCE_ID: oi.instance_id,
                    FIRE_AT: event.fire_at.isoformat(),
                    TASK_ID: event.timer_id,
                },
                start=timer.timestamp if timer is not None else event.timestamp,
                end=now,
            )
        elif isinstance(event, ev.EventSent) and event.instance_id.startswith("@"):
            request = _entity_request(event)
            if request is not None and request.is_signal:
                _emit_entity_request(event, request, own, start=now, end=now)
        elif isinstance(event, ev.EventRaised) and event.name not in answered:
            call = _entity_call(past, event.name)
            if call is not None:
                answered.add(event.name)
                _emit_entity_request(*call, own, start=call[0].timestamp, end=now, answer=event)
        elif isinstance(event, ev.EventSent):
            _emit(
                span_name("orchestration_event", event.name),
                kind=SpanKind.PRODUCER,
                parent=own,
                attributes={
                    TYPE: "event",
                    NAME: event.name,
                    INSTANCE_ID: oi.instance_id,
                    EXECUTION_ID: oi.execution_id,
                    TARGET_INSTANCE_ID: event.instance_id,
                },
                start=now,
                end=now,
            )
    # A rewound instance ended once already: its span was exported then, with this id.
    rewound = any(isinstance(e, ev.ExecutionRewound) for e in (*past, *new))
    ends = runtime_status.is_terminal or (
        new_trace and runtime_status is OrchestrationStatus.CONTINUED_AS_NEW
    )
    if ends and not rewound:
        _end_orchestration(started, own, runtime_status, new, now)


def _entity_request(event: ev.EventSent) -> RequestMessage | None:
    """The operation request an ``EventSent`` carries with a client span's context, if any."""
    from durablehub.entities.messages import RequestMessage

    try:
        request = RequestMessage.from_json(event.input)
    except ValueError:  # a release, or not an entity message
        return None
    if (
        request.operation is None
        or request.is_lock_request
        or tc.parent_of(request.parent_trace_context) is None
    ):
        return None
    return request


def _entity_call(past: Sequence[ev.HistoryEvent], name: str) -> tuple[ev.EventSent, RequestMessage] | None:
    """The call an event named ``name`` answers, if it is one: only a request that contains the
    name (its id) is parsed, so an external event costs a substring search of the requests."""
    for event in reversed(past):
        if (
            isinstance(event, ev.EventSent)
            and event.instance_id.startswith("@")
            and name in (event.input or "")
        ):
            request = _entity_request(event)
            if request is not None and request.id == name and not request.is_signal:
                return event, request
    return None


def _emit_entity_request(
    sent: ev.EventSent,
    request: RequestMessage,
    own: tc.SpanRef,
    *,
    start: datetime,
    end: datetime,
    answer: ev.EventRaised | None = None,
) -> None:
    """DTFx's span of calling (client) or signalling (producer) an entity, with the id its
    request message gave the entity as parent."""
    from durablehub.entities.messages import ResponseMessage

    client = tc.parent_of(request.parent_trace_context)
    assert client is not None
    error: str | None = None
    if answer is not None:
        with contextlib.suppress(ValueError):
            failure = ResponseMessage.from_json(answer.input).failure_details
            error = (failure.message or failure.error_type or "entity operation failed") if failure else None
    _emit(
        entity_span_name(sent.instance_id, request.operation or ""),
        kind=SpanKind.PRODUCER if request.is_signal else SpanKind.CLIENT,
        parent=own,
        span_id=client.span_id,
        attributes=_entity_request_attributes(sent.instance_id, request.is_signal, request.scheduled_time),
        start=start,
        end=end,
        error=error,
    )


def entity_span_name(instance_id: str, operation: str) -> str:
    """DTFx's ``entity:{name}:{operation}`` of entity ``@name@key``."""
    name = instance_id.split("@")[1] if instance_id.count("@") >= 2 else instance_id
    return f"entity:{name}:{operation}"


def _entity_request_attributes(target: str, is_signal: bool, scheduled: datetime | None) -> dict[str, Any]:
    return {
        TYPE: "entity",
        OPERATION: "signal_entity" if is_signal else "call_entity",
        TARGET_INSTANCE_ID: target,
        SCHEDULED_TIME: scheduled.isoformat() if scheduled is not None else None,
    }


def _end_orchestration(
    started: ev.ExecutionStarted,
    own: tc.SpanRef,
    status: OrchestrationStatus,
    new: list[ev.HistoryEvent],
    now: datetime,
) -> None:
    context = started.parent_trace_context or {}
    begun = tc.parse_start_time(context.get("ActivityStartTime")) or started.timestamp
    error: str | None = None
    if status is OrchestrationStatus.FAILED:
        done = next((e for e in new if isinstance(e, ev.ExecutionCompleted)), None)
        details = done.failure_details if done is not None else None
        error = (
            (details.message if details is not None else None) or (done.result if done else None) or "Failed"
        )
    elif status not in (OrchestrationStatus.COMPLETED, OrchestrationStatus.CONTINUED_AS_NEW):
        error = status.table_name
    _emit(
        span_name("orchestration", started.name, started.version),
        kind=SpanKind.SERVER,
        parent=tc.parent_of(context),
        span_id=own.span_id,
        attributes={
            TYPE: "orchestration",
            NAME: started.name,
            INSTANCE_ID: started.orchestration_instance.instance_id,
            EXECUTION_ID: started.orchestration_instance.execution_id,
            STATUS: status.table_name,
            **_version(started.version),
        },
        start=begun,
        end=now,
        error=error,
        ok=None if error else "ok",
    )


# ---------------------------------------------------------------------------- activities


@contextlib.contextmanager
def activity_span(scheduled: ev.TaskScheduled, instance_id: str) -> Iterator[trace.Span | None]:
    """``activity:{name}`` (server) around the activity code, current while it runs (on its
    thread too: copy the context there), child of the client span ``TaskScheduled`` names."""
    parent = tc.parent_of(scheduled.parent_trace_context)
    if parent is None:
        yield None
        return
    span = _start(
        span_name("activity", scheduled.name, scheduled.version),
        kind=SpanKind.SERVER,
        parent=parent,
        attributes={
            TYPE: "activity",
            NAME: scheduled.name,
            INSTANCE_ID: instance_id,
            TASK_ID: scheduled.event_id,
            **_version(scheduled.version),
        },
    )
    with _current(span):
        yield span


def activity_outcome(span: trace.Span | None, response: ev.HistoryEvent) -> None:
    """An activity that failed (its code raised) ends its server span with an error."""
    if span is not None and isinstance(response, ev.TaskFailed):
        span.set_status(_failed(response.reason or "Unspecified task activity failure"))


@contextlib.contextmanager
def continuing(headers: Mapping[str, str]) -> Iterator[None]:
    """Make the span a request's ``traceparent`` (and ``tracestate``) header names the current
    parent, through the configured propagators (W3C trace context by default)."""
    from opentelemetry import propagate

    # An instrumented server (or framework) has made its own span of the request current
    # already, a child of the same traceparent: the client span belongs under it.
    if "traceparent" not in headers or trace.get_current_span().get_span_context().is_valid:
        yield
        return
    token = otel_context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def under(context: Mapping[str, Any] | None) -> Iterator[None]:
    """Make the span a ``ParentTraceContext`` names (an SDK's, through the sidecar) the
    current parent; without a valid one, change nothing."""
    parent = _context(tc.parent_of(context))
    if parent is None:
        yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


# ------------------------------------------------------------------------------ entities


def entity_batch_committed(
    instance_id: str, events: Iterable[ev.HistoryEvent], *, seen_before: Collection[str], now: datetime
) -> None:
    """``entity:{name}:{operation}`` for each operation request a committed batch received
    (server for a call, consumer for a signal), child of the span its message names; requests
    the entity had seen already (redeliveries) emit nothing."""
    if not tracing_enabled():
        return
    from durablehub.entities.messages import RequestMessage

    for event in events:
        if not isinstance(event, ev.EventRaised) or event.name == "release":
            continue
        try:
            request = RequestMessage.from_json(event.input)
        except Exception:  # not a request (a release, a foreign message): no span
            continue
        # The request's own context names the caller's span; a sender that gives none (before
        # entity request spans) leaves it on the event, as DTFx reads it too.
        parent = tc.parent_of(request.parent_trace_context) or tc.parent_of(event.parent_trace_context)
        if parent is None:
            continue
        if request.is_lock_request or request.operation is None or request.id in seen_before:
            continue
        _emit(
            entity_span_name(instance_id, request.operation),
            kind=SpanKind.CONSUMER if request.is_signal else SpanKind.SERVER,
            parent=parent,
            attributes={
                TYPE: "entity",
                OPERATION: "signal_entity" if request.is_signal else "call_entity",
                INSTANCE_ID: instance_id,
            },
            start=event.timestamp if event.timestamp < now else now,
            end=now,
        )
