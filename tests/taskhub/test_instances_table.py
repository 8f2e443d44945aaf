"""Instances rows: the columns and Edm types the C# reader maps, and large values as blob URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from durablehub.engine import history as ev
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.taskhub import rows
from durablehub.taskhub.hub import TaskHub
from tests.taskhub.edm import edm_types, raw_rows

pytestmark = pytest.mark.azurite
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def started(iid: str, **kw) -> ev.ExecutionStarted:  # noqa: ANN003
    return ev.ExecutionStarted(
        orchestration_instance=ev.OrchestrationInstance(instance_id=iid, execution_id="e1"),
        name="ProcessOrder",
        input='{"id":1}',
        timestamp=T0,
        **kw,
    )


def test_pending_row_then_checkpoints_have_reference_columns_and_types(hub: TaskHub) -> None:
    iid = "inst/1"
    hub.instances.insert(
        rows.pending_instance_row(
            task_hub=hub.names.hub,
            started=started(iid, scheduled_start_time=T0 + timedelta(minutes=5)),
            now=T0,
        )
    )
    [pending] = raw_rows(hub.settings, hub.names.instances_table, iid)
    assert pending["PartitionKey"] == "inst^01" and pending["RowKey"] == ""
    assert (
        pending["RuntimeStatus"] == "Pending"
        and pending["CustomStatus"] == "null"
        and pending["Tags"] == "null"
    )
    assert (
        edm_types(pending).items()
        >= {
            "CreatedTime": "Edm.DateTime",
            "LastUpdatedTime": "Edm.DateTime",
            "ScheduledStartTime": "Edm.DateTime",
            "Generation": "Edm.Int32",
            "RuntimeStatus": "Edm.String",
            "TaskHubName": "Edm.String",
            "ExecutionId": "Edm.String",
            "Name": "Edm.String",
            "Input": "Edm.String",
            "Version": "Edm.String",
        }.items()
    )

    hub.instances.upsert_merge(
        rows.checkpoint_instance_row(
            task_hub=hub.names.hub,
            instance_id=iid,
            execution_id="e1",
            custom_status='"halfway"',
            new_events=[ev.OrchestratorStarted(timestamp=T0), started(iid)],
            now=T0,
        )
    )
    assert hub.instances.get(iid)["RuntimeStatus"] == "Running"

    failure = FailureDetails(message="card declined", error_type="builtins.ValueError")
    hub.instances.upsert_merge(
        rows.checkpoint_instance_row(
            task_hub=hub.names.hub,
            instance_id=iid,
            execution_id="e1",
            custom_status=None,
            new_events=[
                ev.ExecutionCompleted(
                    orchestration_status=OrchestrationStatus.FAILED,
                    failure_details=failure,
                    timestamp=T0 + timedelta(seconds=3),
                )
            ],
            now=T0 + timedelta(seconds=4),
        )
    )
    [done] = raw_rows(hub.settings, hub.names.instances_table, iid)
    assert done["RuntimeStatus"] == "Failed" and done["Output"] == "builtins.ValueError: card declined"
    assert done["CustomStatus"] == "null" and done["Input"] == '{"id":1}' and done["Name"] == "ProcessOrder"
    assert edm_types(done)["CompletedTime"] == "Edm.DateTime"
    assert done["LastUpdatedTime"].startswith("2026-03-01T12:00:04")


def test_terminated_and_suspended_status_columns() -> None:
    row = rows.checkpoint_instance_row(
        task_hub="H",
        instance_id="i",
        execution_id="e",
        custom_status=None,
        new_events=[ev.ExecutionTerminated(input='"stop"')],
    )
    assert row["RuntimeStatus"] == "Terminated" and row["Output"] == '"stop"' and "CompletedTime" in row
    row = rows.checkpoint_instance_row(
        task_hub="H",
        instance_id="i",
        execution_id="e",
        custom_status=None,
        new_events=[ev.ExecutionSuspended(reason="pause")],
    )
    assert row["RuntimeStatus"] == "Suspended" and row["Output"] == "pause"


def test_large_input_is_stored_as_a_blob_url_and_read_back(hub: TaskHub) -> None:
    big = '"' + "z" * 50_000 + '"'
    hub.instances.insert(
        rows.pending_instance_row(
            task_hub=hub.names.hub,
            started=ev.ExecutionStarted(
                orchestration_instance=ev.OrchestrationInstance(instance_id="big", execution_id="e1"),
                name="P",
                input=big,
            ),
        )
    )
    [raw] = raw_rows(hub.settings, hub.names.instances_table, "big")
    assert raw["Input"].startswith(hub.large_messages.url("big/"))
    assert raw["Input"].endswith("-Input.json.gz")
    assert hub.instances.get("big")["Input"] == big


def test_insert_twice_is_refused_and_delete_is_idempotent(hub: TaskHub) -> None:
    from azure.core.exceptions import ResourceExistsError

    row = rows.pending_instance_row(task_hub=hub.names.hub, started=started("dup"))
    hub.instances.insert(row)
    with pytest.raises(ResourceExistsError):
        hub.instances.insert(row)
    assert hub.instances.delete("dup") is True and hub.instances.delete("dup") is False
    assert hub.instances.get("dup") is None


def test_a_guarded_delete_is_one_plain_delete_that_tells_gone_from_changed(hub: TaskHub) -> None:
    """A DELETE with If-Match, not a transaction of one (on Azurite a third of the CPU, on the
    client a third or less); its 404 and 412 are still told apart."""
    from azure.core.exceptions import ResourceModifiedError

    hub.instances.insert(rows.pending_instance_row(task_hub=hub.names.hub, started=started("guarded")))
    etag = hub.instances.get("guarded")["_etag"]
    hub.instances.merge({"PartitionKey": "guarded", "RowKey": "", "RuntimeStatus": "Running"}, etag=etag)
    hub.counter.reset()
    with pytest.raises(ResourceModifiedError, match="guarded"):
        hub.instances.delete("guarded", etag=etag)
    assert hub.instances.get("guarded") is not None
    assert hub.instances.delete("guarded", etag=hub.instances.get("guarded")["_etag"]) is True
    assert hub.instances.delete("guarded", etag=etag) is False
    assert hub.counter.reset() == {"table.delete": 3, "table.query": 2}  # a point read is a query
