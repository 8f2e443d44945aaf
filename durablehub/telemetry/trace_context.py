"""W3C trace context as DurableTask.Core stores it in the task hub (pure: no OpenTelemetry).

``ParentTraceContext`` (DTFx's ``DistributedTraceContext``) is a JSON object with
``TraceParent`` and ``TraceState`` (the W3C parent of the span the event starts) and, on
``ExecutionStarted`` only, ``Id``, ``SpanId`` and ``ActivityStartTime``: the orchestration
span's own identity, fixed by its first episode so that every later episode (and every
process) parents its spans on the same span, which is exported once, when the instance ends.

Span ids that must be known before their span is exported (the orchestration span, the
client span of a scheduled activity or sub-orchestration) are derived from the execution id
and the action, not drawn at random: two workers that run the same episode (one has lost its
lease and does not know yet) then send the same context, and the loser's messages, which the
receivers drop as duplicates or run once more, point at spans that exist.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MAX_TRACE_STATE = 513  # DTFx drops a longer tracestate rather than truncating it

# The members of DurableTask.Core.Tracing.DistributedTraceContext, in its order.
KEYS = ("TraceParent", "TraceState", "Id", "SpanId", "ActivityStartTime")


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span's W3C identity: lower-case hex ids, as in a ``traceparent`` header."""

    trace_id: str
    span_id: str
    flags: str = "01"
    trace_state: str | None = None

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)


def parse_traceparent(text: Any, trace_state: Any = None) -> SpanRef | None:
    """A ``traceparent`` header's span, or None if it is not a valid one (version ff, zero ids)."""
    if not isinstance(text, str):
        return None
    m = _TRACEPARENT.match(text.strip().lower())
    if m is None or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    if m.group(1) == "00" and m.group(5):
        return None  # version 00 has exactly four fields
    state = trace_state if isinstance(trace_state, str) and len(trace_state) <= _MAX_TRACE_STATE else None
    return SpanRef(m.group(2), m.group(3), m.group(4), state or None)


def derived_span_id(*parts: object) -> str:
    """A span id (16 hex digits, never all zero) that depends only on ``parts``."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode("utf-8")).hexdigest()
    return digest[:16] if digest[:16] != "0" * 16 else digest[16:32]


def format_start_time(value: datetime) -> str:
    """A ``DateTimeOffset`` as Newtonsoft writes it: 7 fractional digits and an offset."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0+00:00"


def parse_start_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    raw = text.strip().replace("Z", "+00:00")
    head, dot, rest = raw.partition(".")
    if dot:  # .NET writes 7 fractional digits, Python reads at most 6
        digits = re.match(r"\d*", rest)
        frac = digits.group(0) if digits else ""
        raw = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac) :]}"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def context_for(parent: SpanRef) -> dict[str, Any]:
    """The ``ParentTraceContext`` of an event whose span is a child of ``parent``."""
    return {"TraceParent": parent.traceparent, "TraceState": parent.trace_state}


def parent_of(context: Mapping[str, Any] | None) -> SpanRef | None:
    """The span an event's context names as parent (``TraceParent``)."""
    if not context:
        return None
    return parse_traceparent(context.get("TraceParent"), context.get("TraceState"))


def orchestration_span_of(context: Mapping[str, Any] | None) -> SpanRef | None:
    """The orchestration span an ``ExecutionStarted`` context records (its ``SpanId``), if any."""
    parent = parent_of(context)
    span_id = (context or {}).get("SpanId")
    if parent is None or not isinstance(span_id, str) or not re.fullmatch(r"[0-9a-f]{16}", span_id):
        return None
    return SpanRef(parent.trace_id, span_id, parent.flags, parent.trace_state)


def with_orchestration_span(
    context: Mapping[str, Any] | None, *, execution_id: str | None, now: datetime
) -> dict[str, Any] | None:
    """An ``ExecutionStarted`` context with the orchestration span's identity filled in, as the
    first episode of an execution stores it; unchanged when it has one or has no valid parent."""
    if context is None or orchestration_span_of(context) is not None:
        return dict(context) if context is not None else None
    parent = parent_of(context)
    if parent is None:
        return dict(context)
    span_id = derived_span_id(execution_id, "orchestration")
    own = SpanRef(parent.trace_id, span_id, parent.flags, parent.trace_state)
    return {
        **{k: context.get(k) for k in KEYS},
        **{k: v for k, v in context.items() if k not in KEYS},
        "Id": own.traceparent,
        "SpanId": span_id,
        "ActivityStartTime": format_start_time(now),
    }


def child_of_orchestration(
    started_context: Mapping[str, Any] | None, *, execution_id: str | None, what: str
) -> tuple[str, dict[str, Any]] | None:
    """A client span id for an action of the orchestration and the context of the event it
    sends (its ``TraceParent`` is that client span); None if the orchestration is not traced."""
    own = orchestration_span_of(started_context)
    if own is None:
        return None
    span_id = derived_span_id(execution_id, what)
    return span_id, context_for(SpanRef(own.trace_id, span_id, own.flags, own.trace_state))
