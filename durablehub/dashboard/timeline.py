"""The Gantt timeline of one instance, computed from its history without I/O.

One bar per activity call, sub-orchestration, timer and received event, from the moment the
orchestrator scheduled it (its ``TaskScheduled``, ``SubOrchestrationInstanceCreated``,
``TimerCreated``) to its answer (matched by ``TaskScheduledId`` / ``TimerId``; a timer's is its
fire time), or to now while it is outstanding. Retries show as further bars of the same name,
numbered, after the failed attempt and its retry timer. History does not record when an
orchestrator started waiting for an event, only when the event arrived: a received event is a
mark at its arrival.

The SVG is drawn on the server (``templates/_timeline.html``): the page needs no charting
library, works without JavaScript, and every label goes through the template's escaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from durablehub.dashboard.views import duration_text, failure_text, short_json
from durablehub.engine import history as ev

MAX_BARS = 500  # beyond this a browser slows down; the history table has everything
LABEL_WIDTH = 260
CHART_WIDTH = 640
ROW_HEIGHT = 22
TOP = 26


@dataclass(slots=True)
class Bar:
    """Built while the history is read (mutable: a completion ends its bar in place)."""

    kind: str  # activity, orchestration, timer, event
    label: str
    start: datetime
    end: datetime | None  # None: still outstanding
    state: str  # completed, failed, running, fired, raised
    attempt: int = 1
    detail: str = ""
    instance_id: str | None = None  # a sub-orchestration's, for its link


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    start: datetime
    end: datetime
    hidden: int = 0  # bars over MAX_BARS, not drawn

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def build(events: Sequence[ev.HistoryEvent], now: datetime, *, live: bool) -> Timeline:
    """The bars of a history. ``live``: the instance still runs, so outstanding bars reach
    ``now``; otherwise they end where the history ends."""
    bars: list[Bar] = []
    open_calls: dict[int, Bar] = {}  # by the scheduling event's id
    open_timers: dict[int, Bar] = {}
    for event in events:
        if isinstance(event, ev.TaskScheduled):
            bars.append(Bar("activity", event.name, event.timestamp, None, "running"))
            open_calls[event.event_id] = bars[-1]
        elif isinstance(event, ev.SubOrchestrationInstanceCreated):
            open_calls[event.event_id] = Bar(
                "orchestration", event.name, event.timestamp, None, "running", instance_id=event.instance_id
            )
            bars.append(open_calls[event.event_id])
        elif isinstance(event, ev.TimerCreated):
            label = f"timer {duration_text(event.fire_at - event.timestamp)}".strip()
            open_timers[event.event_id] = Bar(
                "timer", label, event.timestamp, None, "running", detail=f"fires {event.fire_at}"
            )
            bars.append(open_timers[event.event_id])
        elif isinstance(event, (ev.TaskCompleted, ev.SubOrchestrationInstanceCompleted)):
            bar = open_calls.pop(event.task_scheduled_id, None)
            if bar is not None:
                bar.end, bar.state, bar.detail = event.timestamp, "completed", short_json(event.result)
        elif isinstance(event, (ev.TaskFailed, ev.SubOrchestrationInstanceFailed)):
            bar = open_calls.pop(event.task_scheduled_id, None)
            if bar is not None:
                bar.end, bar.state = event.timestamp, "failed"
                bar.detail = failure_text(event.failure_details) or event.reason or "failed"
        elif isinstance(event, ev.TimerFired):
            bar = open_timers.pop(event.timer_id, None)
            if bar is not None:
                # Its fire time, not its timestamp: a TimerFired is stamped when the episode that
                # created the timer wrote it (as DTFx does), so the timestamp is its creation's.
                bar.end, bar.state = max(event.fire_at, bar.start), "fired"
        elif isinstance(event, ev.EventRaised):
            bars.append(
                Bar(
                    "event",
                    event.name,
                    event.timestamp,
                    event.timestamp,
                    "raised",
                    detail=short_json(event.input),
                )
            )
    _number_attempts(bars)
    start = min((e.timestamp for e in events), default=now)  # ExecutionStarted may precede the first row
    last = max((_ends_at(e) for e in events), default=now)
    end = max(now, last) if live else last
    if not live:
        for bar in bars:
            if bar.end is None:
                bar.end, bar.state = end, "unfinished"
    hidden = max(0, len(bars) - MAX_BARS)
    return Timeline(bars[:MAX_BARS], start, max(end, start + timedelta(milliseconds=1)), hidden)


def _ends_at(event: ev.HistoryEvent) -> datetime:
    """When an event's moment is over: a fired timer's fire time, else its timestamp."""
    return max(event.timestamp, event.fire_at) if isinstance(event, ev.TimerFired) else event.timestamp


def _number_attempts(bars: list[Bar]) -> None:
    """A call made again after a failed call of the same name is its next attempt."""
    failed_attempts: dict[tuple[str, str], int] = {}
    for bar in bars:
        if bar.kind not in ("activity", "orchestration"):
            continue
        key = (bar.kind, bar.label)
        bar.attempt = failed_attempts.get(key, 0) + 1
        if bar.state == "failed":
            failed_attempts[key] = bar.attempt
        else:
            failed_attempts.pop(key, None)


@dataclass(frozen=True)
class DrawnBar:
    bar: Bar
    x: float
    width: float
    y: float
    title: str


def layout(timeline: Timeline, now: datetime) -> list[DrawnBar]:
    """Coordinates of each bar in the chart (x from LABEL_WIDTH, CHART_WIDTH wide)."""
    total = timeline.span.total_seconds()
    drawn = []
    for row, bar in enumerate(timeline.bars):
        end = bar.end or now
        x = LABEL_WIDTH + (bar.start - timeline.start).total_seconds() / total * CHART_WIDTH
        width = max(2.0, (end - bar.start).total_seconds() / total * CHART_WIDTH)
        width = min(width, LABEL_WIDTH + CHART_WIDTH - x) if x < LABEL_WIDTH + CHART_WIDTH else 2.0
        took = duration_text(end - bar.start) if bar.kind != "event" else ""
        title = " · ".join(p for p in (bar.label, bar.state, took, bar.detail) if p)
        drawn.append(DrawnBar(bar, round(x, 1), round(max(width, 2.0), 1), TOP + row * ROW_HEIGHT, title))
    return drawn


def ticks(timeline: Timeline, count: int = 5) -> list[tuple[float, str]]:
    """Axis marks: x and the time since the first event."""
    span = timeline.span
    return [
        (round(LABEL_WIDTH + CHART_WIDTH * i / count, 1), "+" + (duration_text(span * i / count) or "0 s"))
        for i in range(count + 1)
    ]


def refresh_seconds(events: int) -> int:
    """How often a running instance's timeline is drawn again: each time reads its whole history,
    so every 2 s, and 2 s more per 1,000 events (20 s at 10,000)."""
    return max(2, 2 * math.ceil(events / 1000))


def height(timeline: Timeline) -> int:
    return TOP + max(1, len(timeline.bars)) * ROW_HEIGHT + 8
