"""Whole-system request counts from Azurite's access log (durablehub.testing.request_log)."""

from __future__ import annotations

import time

import pytest

from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.request_log import AzuriteRequestLog, service_of
from tests.conftest import StorageEmulator

pytestmark = pytest.mark.azurite


def test_the_log_counts_what_the_request_counter_counts(
    azurite: StorageEmulator, settings: TaskHubSettings
) -> None:
    """Every request a client makes is in Azurite's log, named as the metering policy names it."""
    assert azurite.process is not None and azurite.process.log_path is not None
    log = AzuriteRequestLog(azurite.process.log_path, settings.names)
    mark = log.mark()
    with TaskHub(settings) as hub:
        hub.create()
        hub.describe()
        hub.instances.get("nobody")
        counted = hub.counter.snapshot()
    # Azurite writes its log as a stream: the last lines may reach the file a moment after
    # their answers reached us (a machine under load showed it), so read until they are in.
    # Other tests' requests land in the same log: ours are a subset, operation by operation.
    deadline = time.monotonic() + 10
    logged = log.since(mark)
    while not all(logged[op] >= n for op, n in counted.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
        logged = log.since(mark)
    assert all(logged[op] >= n for op, n in counted.items()), (counted, logged)
    assert sum(counted.values()) > 10


@pytest.mark.parametrize(
    ("target", "service"),
    [
        ("/devstoreaccount1/h-control-00/messages?numofmessages=32", "queue"),
        ("/devstoreaccount1/h-control-00/messages/abc?popreceipt=x", "queue"),
        ("/devstoreaccount1/h-workitems", "queue"),
        ("/devstoreaccount1/$batch", "table"),
        ("/devstoreaccount1/HInstances(PartitionKey='a',RowKey='')", "table"),
        ("/devstoreaccount1/Tables", "table"),
        ("/devstoreaccount1/h-leases/default/h-control-00?comp=lease", "blob"),
        ("/devstoreaccount1/h-largemessages?restype=container&comp=list", "blob"),
        ("/devstoreaccount1/h-largemessages/i/x.json.gz", "blob"),
    ],
)
def test_the_service_is_told_by_the_path(target: str, service: str) -> None:
    assert service_of(target) == service
