"""The timeline's bars from a history, without storage: one bar per call, timer and event,
retries numbered, failures marked, outstanding work drawn to now while the instance runs."""

from __future__ import annotations

from datetime import timedelta

from durablehub.dashboard import timeline
from durablehub.testing import history as h

T0 = h.T0


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_one_bar_per_activity_sub_orchestration_timer_and_event() -> None:
    events = [
        h.started("Flow"),
        h.task_scheduled(0, "A", at=at(0)),
        h.task_scheduled(1, "B", at=at(0)),
        h.sub_orch_created(2, "Child", "kid", at=at(1)),
        h.timer_created(3, at(10), at=at(1)),
        h.task_completed(0, 1, at=at(2)),
        h.task_completed(1, 2, at=at(3)),
        h.sub_orch_completed(2, 3, at=at(4)),
        h.event_raised("Approval", True, at=at(5)),
        h.timer_fired(3, at(10)),
    ]
    chart = timeline.build(events, at(20), live=False)
    assert [(b.kind, b.label, b.state) for b in chart.bars] == [
        ("activity", "A", "completed"),
        ("activity", "B", "completed"),
        ("orchestration", "Child", "completed"),
        ("timer", "timer 9.0 s", "fired"),
        ("event", "Approval", "raised"),
    ]
    a, _, child, timer, event = chart.bars
    assert (a.start, a.end) == (at(0), at(2))
    assert child.instance_id == "kid"
    assert timer.end == at(10) and event.start == event.end == at(5)
    assert chart.start == T0 and chart.end == at(10)  # a finished instance ends with its history


def test_retries_are_numbered_and_failures_marked() -> None:
    events = [
        h.started("Flow"),
        h.task_scheduled(0, "Charge", at=at(0)),
        h.task_failed(0, "card declined", at=at(1)),
        h.timer_created(1, at(3), at=at(1)),
        h.timer_fired(1, at(3)),
        h.task_scheduled(2, "Charge", at=at(3)),
        h.task_failed(2, "card declined", at=at(4)),
        h.timer_created(3, at(6), at=at(4)),
        h.timer_fired(3, at(6)),
        h.task_scheduled(4, "Charge", at=at(6)),
        h.task_completed(4, "ok", at=at(7)),
        h.task_scheduled(5, "Charge", at=at(8)),  # a new call after a success: attempt 1 again
        h.task_completed(5, "ok", at=at(9)),
    ]
    bars = [b for b in timeline.build(events, at(9), live=False).bars if b.kind == "activity"]
    assert [(b.attempt, b.state) for b in bars] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
        (1, "completed"),
    ]
    assert "builtins.ValueError: card declined" in bars[0].detail


def test_outstanding_work_reaches_now_while_live_and_is_unfinished_after() -> None:
    events = [h.started("Flow"), h.task_scheduled(0, "Slow", at=at(0)), h.timer_created(1, at(60), at=at(0))]
    live = timeline.build(events, at(30), live=True)
    assert [(b.state, b.end) for b in live.bars] == [("running", None), ("running", None)]
    assert live.end == at(30)
    drawn = timeline.layout(live, at(30))
    assert drawn[0].x == timeline.LABEL_WIDTH and drawn[0].width == timeline.CHART_WIDTH
    ended = timeline.build(events, at(30), live=False)
    assert {b.state for b in ended.bars} == {"unfinished"}


def test_bars_beyond_the_limit_are_counted_not_drawn() -> None:
    events = [h.started("Flow")]
    for i in range(timeline.MAX_BARS + 7):
        events += [h.task_scheduled(i, "Step", at=at(i)), h.task_completed(i, i, at=at(i + 0.5))]
    chart = timeline.build(events, at(9999), live=False)
    assert len(chart.bars) == timeline.MAX_BARS and chart.hidden == 7


def test_an_empty_history_draws_nothing() -> None:
    chart = timeline.build([], T0, live=True)
    assert chart.bars == [] and chart.end > chart.start


def test_the_chart_starts_at_the_earliest_event_not_the_first_row() -> None:
    # The first history row is the episode's OrchestratorStarted; ExecutionStarted, after it,
    # carries the earlier creation time.
    events = [h.orchestrator_started(at(1)), h.started("Flow"), h.task_scheduled(0, "A", at=at(1))]
    chart = timeline.build(events, at(2), live=True)
    assert chart.start == T0
    assert timeline.layout(chart, at(2))[0].x == timeline.LABEL_WIDTH + timeline.CHART_WIDTH / 2
