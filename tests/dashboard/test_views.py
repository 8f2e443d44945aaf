"""The list's filters travel in the URL and come back the same; bad ones are named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from durablehub.dashboard import views
from durablehub.models import OrchestrationStatus
from durablehub.testing import history as h

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_filters_round_trip_through_the_url() -> None:
    filters = views.ListFilters(
        statuses=(OrchestrationStatus.RUNNING, OrchestrationStatus.FAILED),
        id_prefix="order-",
        name_prefix="Process",
        range="custom",
        created_from=datetime(2026, 1, 1, tzinfo=UTC),
        created_to=datetime(2026, 2, 1, tzinfo=UTC),
        page_size=20,
        token="abc",
        show_io=True,
        sort="created",
        descending=True,
        refresh=10,
    )
    url = filters.url("/dashboard/")
    assert views.ListFilters.from_query(parse_qs(urlsplit(url).query)) == filters
    assert views.ListFilters().url("/dashboard/") == "/dashboard/"


def test_a_preset_range_becomes_a_created_time_filter() -> None:
    query = views.ListFilters.from_query({"range": ["24h"], "status": ["Running,Pending"]}).query(NOW)
    assert query.created_time_from == NOW - timedelta(days=1) and query.created_time_to is None
    assert query.runtime_status == {OrchestrationStatus.RUNNING, OrchestrationStatus.PENDING}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": ["Sleeping"]}, "unknown status 'Sleeping'"),
        ({"range": ["2w"]}, "unknown range '2w'"),
        ({"size": ["7"]}, "page size must be one of"),
        ({"sort": ["input"]}, "unknown sort 'input'"),
        ({"range": ["custom"], "from": ["yesterday"]}, "'from' must be a date"),
        ({"refresh": ["1"]}, "refresh must be one of"),
    ],
)
def test_bad_filters_are_named(params: dict[str, list[str]], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        views.ListFilters.from_query(params)


def test_history_rows_join_completions_to_what_they_answer() -> None:
    t0 = h.T0
    events = [
        h.started("Flow", {"x": 1}),
        h.task_scheduled(0, "A", at=t0),
        h.task_completed(0, {"ok": True}, at=t0 + timedelta(seconds=2)),
        h.sub_orch_created(1, "Child", "kid", at=t0),
        h.sub_orch_failed(1, "nope", at=t0 + timedelta(seconds=3)),
    ]
    rows = views.history_rows(events)
    completed, failed = rows[2], rows[4]
    assert (completed.name, completed.event_id, completed.scheduled) == ("A", 0, t0)
    assert completed.duration == timedelta(seconds=2) and completed.result == '{"ok":true}'
    assert failed.failed and failed.failure == "builtins.ValueError: nope" and failed.instance_link == "kid"
    assert rows[3].instance_link == "kid"


def test_history_pages() -> None:
    page = views.page_of(list(range(250)), 3)
    assert (page.items[0], len(page.items), page.count, page.total) == (200, 50, 3, 250)
    assert views.page_of([], 5).number == 1
    t0 = h.T0
    events = [h.started("Flow")]
    for i in range(150):
        events += [
            h.task_scheduled(i, f"step{i}", at=t0),
            h.task_completed(i, i, at=t0 + timedelta(seconds=1)),
        ]
    last = views.history_page(events, 99)  # past the end: the last page
    assert (last.number, last.count, last.total, len(last.items)) == (4, 4, 301, 1)
    assert last.items == views.history_rows(events)[300:]
    assert last.items[0].name == "step149" and last.items[0].duration == timedelta(seconds=1)


def test_durations_and_json() -> None:
    assert views.duration_text(timedelta(milliseconds=850)) == "850 ms"
    assert views.duration_text(timedelta(minutes=3, seconds=5)) == "3 min 05 s"
    assert views.duration_text(timedelta(days=4, hours=2)) == "4 d 02 h"
    assert views.pretty_json('{"a":[1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert views.pretty_json("not json") == "not json"
