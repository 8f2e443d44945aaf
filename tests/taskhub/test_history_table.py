"""The History table writer and reader against Azurite: columns, Edm types, sentinel, batches, blobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError

from durablehub.engine import history as ev
from durablehub.errors import CheckpointConflictError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.faults import Fault, FaultInjector
from tests.taskhub.edm import edm_types, raw_rows

pytestmark = pytest.mark.azurite

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def started(instance_id: str, execution_id: str, **kw) -> ev.ExecutionStarted:  # noqa: ANN003
    return ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
        name="ProcessOrder",
        input='{"id":42}',
        timestamp=T0,
        **kw,
    )


def episode(instance_id: str, execution_id: str) -> list[ev.HistoryEvent]:
    return [
        ev.OrchestratorStarted(timestamp=T0),
        started(instance_id, execution_id),
        ev.TaskScheduled(event_id=0, name="Charge", input='"card"', timestamp=T0),
        ev.TimerCreated(event_id=1, fire_at=T0 + timedelta(hours=72), timestamp=T0),
        ev.OrchestratorCompleted(timestamp=T0),
    ]


def test_rows_carry_reference_columns_and_edm_types(hub: TaskHub) -> None:
    iid = "order/42#a?"  # needs escaping
    events = episode(iid, "e1") + [
        ev.TaskFailed(
            task_scheduled_id=0,
            reason="boom",
            details=None,
            timestamp=T0,
            failure_details=FailureDetails(message="boom", error_type="builtins.ValueError"),
        ),
        ev.ExecutionCompleted(
            event_id=2,
            orchestration_status=OrchestrationStatus.FAILED,
            result=None,
            timestamp=T0,
            failure_details=FailureDetails(message="boom", error_type="builtins.ValueError"),
        ),
    ]
    hub.history.commit(iid, "e1", events, first_sequence_number=0, sentinel_etag=None)
    rows = {r["RowKey"]: r for r in raw_rows(hub.settings, hub.names.history_table, iid)}
    assert list(rows) == [f"{i:016X}" for i in range(7)] + ["sentinel"]
    assert {r["PartitionKey"] for r in rows.values()} == {"order^042^2a^3"}

    es = rows["0000000000000001"]
    assert es["EventType"] == "ExecutionStarted" and es["ExecutionId"] == "e1" and es["EventId"] == -1
    assert es["OrchestrationInstance"] == '{"InstanceId":"order/42#a?","ExecutionId":"e1"}'
    assert es["ParentInstance"] == "null" and es["Tags"] == "null" and es["ParentTraceContext"] == "null"
    assert es["_Timestamp"].startswith("2026-01-02T03:04:05.123456")
    assert (
        edm_types(es).items()
        >= {
            "EventId": "Edm.Int32",
            "IsPlayed": "Edm.Boolean",
            "_Timestamp": "Edm.DateTime",
            "EventType": "Edm.String",
            "ExecutionId": "Edm.String",
            "Name": "Edm.String",
            "Input": "Edm.String",
        }.items()
    )
    timer = rows["0000000000000003"]
    assert timer["EventType"] == "TimerCreated" and timer["EventId"] == 1
    assert edm_types(timer)["FireAt"] == "Edm.DateTime"
    failed = rows["0000000000000005"]
    assert failed["TaskScheduledId"] == 0 and failed["Reason"] == "boom" and "Details" not in failed
    assert failed["FailureDetails"] == (
        '{"ErrorType":"builtins.ValueError","ErrorMessage":"boom","StackTrace":null,"InnerFailure":null,'
        '"IsNonRetriable":false,"Properties":null}'
    )
    done = rows["0000000000000006"]
    assert done["OrchestrationStatus"] == "Failed" and done["EventId"] == 2
    sentinel = rows["sentinel"]
    assert sentinel["ExecutionId"] == "e1" and sentinel["IsCheckpointComplete"] is True
    assert edm_types(sentinel)["CheckpointCompletedTimestamp"] == "Edm.DateTime"


def test_load_round_trips_events_and_returns_sentinel_etag(hub: TaskHub) -> None:
    events = episode("rt", "e1")
    etag = hub.history.commit("rt", "e1", events, first_sequence_number=0, sentinel_etag=None)
    page = hub.history.load("rt")
    assert page.execution_id == "e1" and page.sentinel_etag == etag
    assert list(page.events) == events
    assert hub.history.load("unknown").events == () and hub.history.load("unknown").sentinel_etag is None


def test_stale_sentinel_etag_is_a_checkpoint_conflict(hub: TaskHub) -> None:
    etag = hub.history.commit(
        "split", "e1", episode("split", "e1")[:2], first_sequence_number=0, sentinel_etag=None
    )
    newer = hub.history.commit(
        "split", "e1", [ev.TaskScheduled(event_id=0, name="A")], first_sequence_number=2, sentinel_etag=etag
    )
    with pytest.raises(CheckpointConflictError) as info:  # a worker that lost its lease still holds `etag`
        hub.history.commit(
            "split",
            "e1",
            [ev.TaskScheduled(event_id=0, name="B")],
            first_sequence_number=2,
            sentinel_etag=etag,
        )
    assert info.value.instance_id == "split"
    with pytest.raises(CheckpointConflictError):  # a second "first" commit of the same instance
        hub.history.commit("split", "e1", episode("split", "e1"), first_sequence_number=0, sentinel_etag=None)
    page = hub.history.load("split")
    assert page.sentinel_etag == newer and [
        e.name for e in page.events if isinstance(e, ev.TaskScheduled)
    ] == ["A"]


def test_more_than_99_events_are_written_in_sentinel_chained_batches(hub: TaskHub) -> None:
    before = hub.counter.snapshot().get("table.batch", 0)
    events = [ev.OrchestratorStarted(timestamp=T0), started("big", "e1")] + [
        ev.TaskScheduled(event_id=i, name="Work", input=str(i), timestamp=T0) for i in range(250)
    ]
    hub.history.commit("big", "e1", events, first_sequence_number=0, sentinel_etag=None)
    assert hub.counter.snapshot()["table.batch"] - before == 3  # 99 + 99 + 54
    page = hub.history.load("big")
    assert len(page.events) == 252 and page.checkpoint_complete
    assert [e.input for e in page.events[2:5]] == ["0", "1", "2"]


def test_a_checkpoint_torn_between_its_transactions_is_not_history(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    """The second transaction of a 151-event episode fails: what the first wrote stays out of
    the history (it is listed as uncommitted), the episode can be written again under the
    sentinel's new ETag, and the rows the shorter second attempt does not overwrite are gone."""
    etag = hub.history.commit(
        "torn", "e1", episode("torn", "e1"), first_sequence_number=0, sentinel_etag=None
    )
    big = [ev.OrchestratorStarted(timestamp=T0)] + [
        ev.TaskCompleted(task_scheduled_id=0, result=str(i), timestamp=T0) for i in range(150)
    ]
    injector = FaultInjector(1.0, faults=[Fault.SERVER_ERROR], operations=["table.batch"], skip=1, limit=1)
    with TaskHub(settings.model_copy(update={"retry_total": 0}), policies=[injector.policy]) as faulty:
        with pytest.raises(HttpResponseError):
            faulty.history.commit("torn", "e1", big, first_sequence_number=5, sentinel_etag=etag)
    assert injector.total == 1
    page = hub.history.load("torn")
    assert [type(e) for e in page.events] == [type(e) for e in episode("torn", "e1")]
    assert not page.checkpoint_complete
    assert page.uncommitted_row_keys == tuple(f"{n:016X}" for n in range(5, 5 + 99))
    short = big[:10]
    hub.history.commit(
        "torn",
        "e1",
        short,
        first_sequence_number=5,
        sentinel_etag=page.sentinel_etag,
        uncommitted_row_keys=page.uncommitted_row_keys,
    )
    again = hub.history.load("torn")
    assert len(again.events) == 15 and again.checkpoint_complete and again.uncommitted_row_keys == ()
    keys = sorted(r["RowKey"] for r in hub.history.list_rows("torn") if r["RowKey"] != "sentinel")
    assert keys == [f"{n:016X}" for n in range(15)]


def test_new_generation_overwrites_rows_and_ignores_stale_tail(hub: TaskHub) -> None:
    etag = hub.history.commit(
        "eternal", "gen1", episode("eternal", "gen1"), first_sequence_number=0, sentinel_etag=None
    )
    second = [ev.OrchestratorStarted(timestamp=T0), started("eternal", "gen2")]
    hub.history.commit("eternal", "gen2", second, first_sequence_number=0, sentinel_etag=etag)
    page = hub.history.load("eternal")
    assert page.execution_id == "gen2" and list(page.events) == second  # rows 2..4 of gen1 are left, unread
    assert len(hub.history.list_rows("eternal")) == 6
    assert list(hub.history.load("eternal", "gen2").events) == second


def test_large_properties_are_offloaded_to_gzip_blobs(hub: TaskHub) -> None:
    big = '"' + "x" * 40_000 + '"'  # 80 KB of UTF-16: over the 60 KiB property limit
    first = ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id="large", execution_id="e1"),
        name="P",
        input=big,
        timestamp=T0,
    )
    events = [first, ev.TaskCompleted(task_scheduled_id=0, result=big, timestamp=T0)]
    hub.history.commit("large", "e1", events, first_sequence_number=0, sentinel_etag=None)
    rows = {r["RowKey"]: r for r in raw_rows(hub.settings, hub.names.history_table, "large")}
    assert rows["0000000000000000"]["Input"] == ""
    blob = rows["0000000000000000"]["InputBlobName"]
    assert blob.startswith("large/history-0000000000000000-ExecutionStarted-") and blob.endswith(
        "-Input.json.gz"
    )
    result_blob = rows["0000000000000001"]["ResultBlobName"]
    assert result_blob.startswith("large/history-0000000000000001-TaskCompleted-") and result_blob.endswith(
        "-Result.json.gz"
    )
    page = hub.history.load("large")
    assert page.events[0].input == big and page.events[1].result == big
    assert len(hub.large_messages.list_instance_blobs("large")) == 2


def test_delete_instance_removes_only_that_instance(hub: TaskHub) -> None:
    for iid in ("abc", "abcd"):
        hub.history.commit(iid, "e1", episode(iid, "e1"), first_sequence_number=0, sentinel_etag=None)
    assert hub.history.delete_instance("abc") == 6
    assert hub.history.list_rows("abc") == [] and len(hub.history.list_rows("abcd")) == 6


async def test_async_twin_commits_and_loads(async_hub: AsyncTaskHub) -> None:
    events = episode("async", "e1")
    etag = await async_hub.history.commit("async", "e1", events, first_sequence_number=0, sentinel_etag=None)
    page = await async_hub.history.load("async")
    assert page.sentinel_etag == etag and list(page.events) == events
