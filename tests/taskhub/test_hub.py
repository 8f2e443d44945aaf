"""Creating, opening, describing and deleting a task hub, checked with the plain Azure SDKs."""

from __future__ import annotations

import json

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from durablehub.errors import ConfigurationError, PartitionCountMismatchError, TaskHubNotFoundError
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub

pytestmark = pytest.mark.azurite


def _listing(settings: TaskHubSettings) -> tuple[set[str], set[str], set[str], dict[str, list[str]]]:
    account = settings.storage_account()
    conn = settings.connection_string.get_secret_value()
    queues = {q.name for q in QueueServiceClient.from_connection_string(conn).list_queues()}
    tables = {
        t.name for t in TableServiceClient(endpoint=account.table_url, credential=_key(account)).list_tables()
    }
    blob_service = BlobServiceClient.from_connection_string(conn)
    containers = {c.name for c in blob_service.list_containers()}
    blobs = {c: [b.name for b in blob_service.get_container_client(c).list_blobs()] for c in containers}
    prefix = settings.task_hub.lower()
    return (
        {q for q in queues if q.startswith(prefix)},
        {t for t in tables if t.startswith(settings.task_hub)},
        {c for c in containers if c.startswith(prefix)},
        {c: b for c, b in blobs.items() if c.startswith(prefix)},
    )


def _key(account):  # noqa: ANN001, ANN202
    from azure.core.credentials import AzureNamedKeyCredential

    return AzureNamedKeyCredential(account.account_name, account.account_key.get_secret_value())


def test_create_makes_exactly_the_reference_resources(azurite, hub_name: str) -> None:
    settings = TaskHubSettings(
        task_hub=hub_name, connection_string=azurite.connection_string, partition_count=4
    )
    with TaskHub(settings) as hub:
        info = hub.create()
        try:
            queues, tables, containers, blobs = _listing(settings)
            low = hub_name.lower()
            assert queues == {
                f"{low}-control-00",
                f"{low}-control-01",
                f"{low}-control-02",
                f"{low}-control-03",
                f"{low}-workitems",
            }
            assert tables == {f"{hub_name}History", f"{hub_name}Instances"}
            assert containers == {f"{low}-leases", f"{low}-largemessages"}
            assert sorted(blobs[f"{low}-leases"]) == sorted(
                ["taskhub.json"] + [f"default/{low}-control-{i:02d}" for i in range(4)]
            )
            info_json = json.loads(
                BlobServiceClient.from_connection_string(azurite.connection_string)
                .get_blob_client(f"{low}-leases", "taskhub.json")
                .download_blob()
                .readall()
            )
            assert list(info_json) == ["TaskHubName", "CreatedAt", "PartitionCount"]
            assert info_json["TaskHubName"] == hub_name and info_json["PartitionCount"] == 4
            assert info_json["CreatedAt"].endswith("Z")
            lease = json.loads(
                BlobServiceClient.from_connection_string(azurite.connection_string)
                .get_blob_client(f"{low}-leases", f"default/{low}-control-02")
                .download_blob()
                .readall()
            )
            assert lease == {"PartitionId": f"{low}-control-02", "Owner": None, "Token": None, "Epoch": 0}
            assert info.partition_count == 4
        finally:
            hub.delete()
        assert _listing(settings)[:3] == (set(), set(), set())


def test_create_is_idempotent_and_keeps_created_at(hub: TaskHub) -> None:
    first = hub.leases.read_task_hub_info()
    again = hub.create()
    assert again == first


def test_mixed_case_hub_keeps_case_in_table_names(azurite) -> None:
    settings = TaskHubSettings(
        task_hub="MyOrdersHub" + str(id(object()) % 1000), connection_string=azurite.connection_string
    )
    with TaskHub(settings) as hub:
        hub.create()
        try:
            _, tables, containers, _ = _listing(settings)
            assert tables == {settings.task_hub + "History", settings.task_hub + "Instances"}
            assert all(c == c.lower() for c in containers)
        finally:
            hub.delete()


def test_other_partition_count_is_refused_naming_both(settings: TaskHubSettings, hub: TaskHub) -> None:
    other = TaskHubSettings(
        task_hub=settings.task_hub, connection_string=settings.connection_string, partition_count=6
    )
    with TaskHub(other) as second:
        with pytest.raises(
            PartitionCountMismatchError, match=r"exists with 4 partitions, but 6 are configured"
        ):
            second.create()
        with pytest.raises(PartitionCountMismatchError):
            second.open()


def test_open_missing_hub_says_how_to_create_it(azurite, hub_name: str) -> None:
    settings = TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    with TaskHub(settings) as hub, pytest.raises(TaskHubNotFoundError, match="durablehub hub create"):
        hub.open()


def test_describe_lists_queue_lengths(hub: TaskHub) -> None:
    description = hub.describe()
    assert set(description.queue_lengths) == {*hub.names.control_queues, hub.names.work_item_queue}
    assert all(n == 0 for n in description.queue_lengths.values())


@pytest.mark.parametrize("bad", ["ab", "1hub", "my-hub", "hub_name", "h" * 46, "", "hüb"])
def test_invalid_hub_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid task hub name"):
        TaskHubSettings(task_hub=bad, connection_string="UseDevelopmentStorage=true")


@pytest.mark.parametrize("bad", [0, 17, -1])
def test_invalid_partition_counts_are_refused(bad: int) -> None:
    with pytest.raises(ConfigurationError, match="1 to 16"):
        TaskHubSettings(
            task_hub="GoodHub", connection_string="UseDevelopmentStorage=true", partition_count=bad
        )


async def test_two_creators_with_other_partition_counts_at_once_agree_on_one(azurite, hub_name: str) -> None:
    """A client and a worker creating a missing hub at the same moment: one partition count
    wins (``taskhub.json`` is written only if absent, before any lease blob), the other is
    refused, and the hub has exactly the winner's lease blobs."""
    import asyncio

    from durablehub.taskhub.aio.hub import AsyncTaskHub

    four, eight = (
        TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, partition_count=n)
        for n in (4, 8)
    )
    async with AsyncTaskHub(four) as a, AsyncTaskHub(eight) as b:
        outcomes = await asyncio.gather(a.create(), b.create(), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, PartitionCountMismatchError)]
        created = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(refused) == 1 and len(created) == 1, outcomes
        winner = created[0].partition_count
        assert (await a.leases.read_task_hub_info()).partition_count == winner
        blobs = [
            b.name async for b in a.clients.blob.get_container_client(a.names.leases_container).list_blobs()
        ]
        assert len([name for name in blobs if name != "taskhub.json"]) == winner, blobs  # one lease each


def test_create_of_a_hub_that_exists_writes_nothing_new(settings: TaskHubSettings, hub: TaskHub) -> None:
    before = hub.leases.read_task_hub_info()
    with TaskHub(settings) as again:
        assert again.create() == before
