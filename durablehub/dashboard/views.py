"""What the dashboard's pages show, computed without I/O: list filters as they travel in the
URL, history rows with their durations, JSON and durations as text.

The list's filters live in the query string (``?status=Running&status=Failed&prefix=order-``),
so a view can be bookmarked or shared, and every link the page makes keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from durablehub.engine import history as ev
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.state import OrchestrationQuery, OrchestrationState

# The order statuses are offered and counted in: live ones first.
STATUSES = (
    OrchestrationStatus.RUNNING,
    OrchestrationStatus.PENDING,
    OrchestrationStatus.SUSPENDED,
    OrchestrationStatus.COMPLETED,
    OrchestrationStatus.FAILED,
    OrchestrationStatus.TERMINATED,
    OrchestrationStatus.CONTINUED_AS_NEW,
    OrchestrationStatus.CANCELED,
)
RANGES: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("last hour", timedelta(hours=1)),
    "24h": ("last 24 hours", timedelta(days=1)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "90d": ("last 90 days", timedelta(days=90)),
    "all": ("any time", None),
    "custom": ("custom", None),
}
PAGE_SIZES = (20, 50, 100, 200, 500)
SORTS = ("id", "name", "status", "created", "updated", "duration")
REFRESH_SECONDS = (0, 5, 10, 30, 60)
HISTORY_PAGE_SIZE = 100
SHORT_PAYLOAD_CHARS = 120
PAYLOAD_SHOWN_CHARS = 100_000  # a page shows this much of a payload (up to 16 MiB); the rest downloads


def _one(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or []
    return values[-1].strip() if values else ""


def _time(params: Mapping[str, Sequence[str]], name: str) -> datetime | None:
    text = _one(params, name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{name}' must be a date or time such as 2026-01-31T12:00, not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ListFilters:
    """The instance list's view: filters, page, columns, sorting, auto-refresh."""

    statuses: tuple[OrchestrationStatus, ...] = ()
    id_prefix: str = ""
    name_prefix: str = ""
    range: str = "all"
    created_from: datetime | None = None
    created_to: datetime | None = None
    page_size: int = 50
    token: str | None = None
    show_io: bool = False
    sort: str = "id"
    descending: bool = False
    refresh: int = 0

    @classmethod
    def from_query(cls, params: Mapping[str, Sequence[str]]) -> ListFilters:
        """Filters from a query string (``parse_qs`` shape).

        Raises:
            ValueError: a parameter that cannot be used, named with its value.
        """
        by_name = {s.table_name.lower(): s for s in OrchestrationStatus}
        statuses = []
        for text in params.get("status") or []:
            for part in (p.strip() for p in text.split(",")):
                if not part:
                    continue
                if part.lower() not in by_name:
                    known = ", ".join(s.table_name for s in STATUSES)
                    raise ValueError(f"unknown status {part!r}; use {known}")
                if by_name[part.lower()] not in statuses:
                    statuses.append(by_name[part.lower()])
        period = _one(params, "range") or "all"
        if period not in RANGES:
            raise ValueError(f"unknown range {period!r}; use {', '.join(RANGES)}")
        size_text = _one(params, "size") or "50"
        if not size_text.isdigit() or int(size_text) not in PAGE_SIZES:
            raise ValueError(f"page size must be one of {', '.join(map(str, PAGE_SIZES))}, not {size_text!r}")
        sort = _one(params, "sort") or "id"
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; use {', '.join(SORTS)}")
        refresh_text = _one(params, "refresh") or "0"
        if not refresh_text.isdigit() or int(refresh_text) not in REFRESH_SECONDS:
            raise ValueError(f"refresh must be one of {', '.join(map(str, REFRESH_SECONDS))} seconds")
        created_from = _time(params, "from") if period == "custom" else None
        created_to = _time(params, "to") if period == "custom" else None
        if created_from and created_to and created_from > created_to:
            raise ValueError("'from' is after 'to'")
        return cls(
            statuses=tuple(statuses),
            id_prefix=_one(params, "prefix"),
            name_prefix=_one(params, "name"),
            range=period,
            created_from=created_from,
            created_to=created_to,
            page_size=int(size_text),
            token=_one(params, "page") or None,
            show_io=_one(params, "io") == "1",
            sort=sort,
            descending=_one(params, "desc") == "1",
            refresh=int(refresh_text),
        )

    def query(
        self, now: datetime, *, page_size: int | None = None, statuses: bool = True
    ) -> OrchestrationQuery:
        created_from, created_to = self.created_from, self.created_to
        span = RANGES[self.range][1]
        if span is not None:
            created_from, created_to = now - span, None
        return OrchestrationQuery(
            created_time_from=created_from,
            created_time_to=created_to,
            runtime_status=(self.statuses or None) if statuses else None,
            instance_id_prefix=self.id_prefix or None,
            page_size=page_size or self.page_size,
            fetch_inputs_and_outputs=self.show_io,
            continuation_token=self.token if page_size is None else None,
        )

    def params(self) -> list[tuple[str, str]]:
        """The query string's pairs, defaults left out."""
        default = ListFilters()
        pairs = [("status", s.table_name) for s in self.statuses]
        if self.id_prefix:
            pairs.append(("prefix", self.id_prefix))
        if self.name_prefix:
            pairs.append(("name", self.name_prefix))
        if self.range != default.range:
            pairs.append(("range", self.range))
        if self.range == "custom":
            pairs += [
                (n, v.isoformat()) for n, v in (("from", self.created_from), ("to", self.created_to)) if v
            ]
        if self.page_size != default.page_size:
            pairs.append(("size", str(self.page_size)))
        if self.show_io:
            pairs.append(("io", "1"))
        if self.sort != default.sort:
            pairs.append(("sort", self.sort))
        if self.descending:
            pairs.append(("desc", "1"))
        if self.refresh:
            pairs.append(("refresh", str(self.refresh)))
        if self.token:
            pairs.append(("page", self.token))
        return pairs

    def url(self, path: str, **changes: Any) -> str:
        """``path`` with these filters and ``changes`` as the query string."""
        changed = replace(self, **changes) if changes else self
        query = urlencode(changed.params())
        return f"{path}?{query}" if query else path

    def sort_url(self, path: str, column: str) -> str:
        descending = not self.descending if self.sort == column else False
        return self.url(path, sort=column, descending=descending, token=None)


def duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None:
        return None
    return end - start


def duration_text(span: timedelta | None) -> str:
    """``850 ms``, ``12.4 s``, ``3 min 05 s``, ``2 h 03 min``, ``4 d 02 h``."""
    if span is None:
        return ""
    seconds = span.total_seconds()
    if seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def instance_duration(state: OrchestrationState, now: datetime) -> timedelta | None:
    """From creation to completion, or to now while the instance lives."""
    end = state.completed_at if state.runtime_status.is_terminal else None
    if end is None and state.runtime_status.is_terminal:
        end = state.last_updated_at
    return duration(state.created_at, end or now)


def pretty_json(text: str | None) -> str:
    """Stored JSON, indented; text that is not JSON (another client's) as it is."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def shown_json(text: str | None, limit: int = PAYLOAD_SHOWN_CHARS) -> tuple[str, int]:
    """A payload as the page shows it, and how many characters were left out: indented when it
    fits, else the stored text cut (indenting megabytes only to cut them would be waste)."""
    if text is None:
        return "", 0
    if len(text) <= limit:
        pretty = pretty_json(text)
        if len(pretty) <= limit:
            return pretty, 0
    return text[:limit], len(text) - limit


def short_json(text: str | None, limit: int = SHORT_PAYLOAD_CHARS) -> str:
    if text is None or text == "null":
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_text(details: FailureDetails | None) -> str:
    return f"{details.error_type}: {details.message}" if details is not None else ""


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table. ``scheduled`` and ``duration`` are joined from the event a
    completion answers (``TaskScheduledId``, ``TimerId``)."""

    timestamp: datetime
    event_type: str
    name: str = ""
    event_id: int = -1
    scheduled: datetime | None = None
    duration: timedelta | None = None
    result: str = ""
    failure: str = ""
    instance_link: str | None = None
    failed: bool = False


_ANSWERS = (
    ev.TaskCompleted,
    ev.TaskFailed,
    ev.SubOrchestrationInstanceCompleted,
    ev.SubOrchestrationInstanceFailed,
)


def _origins(events: Sequence[ev.HistoryEvent]) -> dict[int, ev.HistoryEvent]:
    """The events completions refer to, by event id."""
    return {
        e.event_id: e
        for e in events
        if isinstance(e, (ev.TaskScheduled, ev.SubOrchestrationInstanceCreated, ev.TimerCreated))
    }


def _row(event: ev.HistoryEvent, origins: Mapping[int, ev.HistoryEvent]) -> HistoryRow:
    fields: dict[str, Any] = {"event_id": event.event_id}
    origin: ev.HistoryEvent | None = None
    if isinstance(event, _ANSWERS):
        origin = origins.get(event.task_scheduled_id)
    elif isinstance(event, ev.TimerFired):
        origin = origins.get(event.timer_id)
    if origin is not None:
        fields["scheduled"] = origin.timestamp
        # A timer lasts until it fires: its TimerFired is stamped at the timer's creation.
        ended = event.fire_at if isinstance(event, ev.TimerFired) else event.timestamp
        fields["duration"] = duration(origin.timestamp, max(ended, origin.timestamp))
        fields["name"] = getattr(origin, "name", "") or ""
        fields["event_id"] = origin.event_id
        if isinstance(origin, ev.SubOrchestrationInstanceCreated):
            fields["instance_link"] = origin.instance_id
    fields.update(_details(event))
    return HistoryRow(event.timestamp, event.event_type.name, **fields)


def history_rows(events: Sequence[ev.HistoryEvent]) -> list[HistoryRow]:
    origins = _origins(events)
    return [_row(event, origins) for event in events]


def history_page(events: Sequence[ev.HistoryEvent], number: int, size: int = HISTORY_PAGE_SIZE) -> Page:
    """One page of the history table: only its rows are built (a history may hold 10,000+)."""
    page = page_of(events, number, size)
    origins = _origins(events)
    return replace(page, items=[_row(event, origins) for event in page.items])


def _details(event: ev.HistoryEvent) -> dict[str, Any]:
    """Name, result and failure of one event, as the table shows them."""
    found: dict[str, Any] = {}
    name = getattr(event, "name", None)
    if name:
        found["name"] = name
    if isinstance(event, ev.SubOrchestrationInstanceCreated):
        found["instance_link"] = event.instance_id
    if isinstance(event, ev.EventSent):
        found["instance_link"] = event.instance_id
    if isinstance(event, ev.TimerCreated):
        found["scheduled"] = event.fire_at
    for attribute in ("result", "input"):
        value = getattr(event, attribute, None)
        if isinstance(value, str):
            found["result"] = short_json(value)
            break
    details = getattr(event, "failure_details", None)
    if isinstance(details, FailureDetails):
        found["failure"] = failure_text(details)
        found["failed"] = True
    elif isinstance(event, (ev.TaskFailed, ev.SubOrchestrationInstanceFailed)):
        found["failure"] = event.reason or "failed"
        found["failed"] = True
    reason = getattr(event, "reason", None)
    if isinstance(event, (ev.ExecutionSuspended, ev.ExecutionResumed, ev.ExecutionRewound, ev.GenericEvent)):
        found["result"] = reason or ""
    return found


@dataclass(frozen=True)
class Page:
    """One page of a list held in memory (the history)."""

    items: list[Any]
    number: int
    count: int
    total: int = 0
    numbers: list[int] = field(default_factory=list)


def page_of(items: Sequence[Any], number: int, size: int = HISTORY_PAGE_SIZE) -> Page:
    count = max(1, -(-len(items) // size))
    number = min(max(number, 1), count)
    start = (number - 1) * size
    return Page(list(items[start : start + size]), number, count, len(items))
