"""A POST whose connection failed is retried like any other request.

azure-core retries a table request that failed on the wire (a connection reset by the server,
a dropped keep-alive connection, a timeout) only for methods it deems safe to repeat, and POST
is not one: a History transaction of a long purge or a client's Pending-row insert failed
outright on one reset connection (seen in a purge of 2,000 instances on Azurite). Repeating
them is safe in the task hub: a transaction that took effect conflicts on its second run (the
sentinel's ETag, rows already inserted or deleted), which the callers already settle, and a
Pending row that went in makes the insert's retry a lost race the client already settles."""

from __future__ import annotations

import pytest

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.table_batch import submit_transaction
from durablehub.testing.faults import Fault, FaultInjector

pytestmark = pytest.mark.azurite


def failing_once(operation: str, fault: Fault) -> FaultInjector:
    return FaultInjector(1.0, faults=[fault], services=["table"], operations=[operation], limit=1)


@pytest.mark.parametrize("fault", [Fault.TIMEOUT_BEFORE_SEND, Fault.TIMEOUT_AFTER_SEND])
def test_a_history_transaction_that_failed_on_the_wire_is_sent_again(
    settings: TaskHubSettings, hub: TaskHub, fault: Fault
) -> None:
    injector = failing_once("table.batch", fault)
    with TaskHub(settings, policies=[injector.policy]) as faulty:
        faulty.open()
        table = faulty.history._table  # noqa: SLF001 - the table client under test
        row = {"PartitionKey": "p", "RowKey": "r", "Value": 1}
        if fault is Fault.TIMEOUT_BEFORE_SEND:
            submit_transaction(table, [("upsert", row)])
        else:  # it took effect: its second run is an insert that conflicts, as a commit's would
            with pytest.raises(Exception, match="EntityAlreadyExists|already exists"):
                submit_transaction(table, [("create", row)])
    assert injector.counts == {str(fault): 1}
    assert [r["Value"] for r in hub.history._table.query_entities("PartitionKey eq 'p'")] == [1]  # noqa: SLF001


def test_a_start_whose_pending_row_insert_failed_on_the_wire_is_sent_again(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    injector = failing_once("table.insert", Fault.TIMEOUT_AFTER_SEND)
    with (
        TaskHub(settings, policies=[injector.policy]) as faulty,
        DurableClient(settings, hub=faulty) as client,
    ):
        assert client.schedule_new_orchestration("Job", instance_id="given") == "given"
        assert client.schedule_new_orchestration("Job") is not None  # a generated id: the writes at once
    assert injector.counts == {str(Fault.TIMEOUT_AFTER_SEND): 1}
    assert hub.instances.get("given")["RuntimeStatus"] == "Pending"  # type: ignore[index]
