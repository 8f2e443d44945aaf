# Generated from durablehub/taskhub/aio/hub.py by scripts/unasync.py: edit that file instead.
"""TaskHub: one task hub's storage resources, created, opened, described and deleted.

Creating a hub makes exactly what the reference's blob-lease partition manager makes
(taskhub-layout.md §1): the control queues, the work-item queue, the History and Instances
tables, the lease container with ``taskhub.json`` and one lease blob per partition, and the
large-message container. Creation is idempotent; a hub that exists with another partition
count is refused, naming both counts, because changing it would strand messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from durablehub.errors import (
    PartitionCountMismatchError,
    StorageAuthenticationError,
    StorageUnreachableError,
    TaskHubNotFoundError,
)
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.connections import StorageClients, PolicyFactory
from durablehub.taskhub.history_table import HistoryTable
from durablehub.taskhub.instances_table import InstancesTable
from durablehub.taskhub.large_messages import LargeMessageStore
from durablehub.taskhub.leases import PartitionLeaseStore, TaskHubInfo
from durablehub.taskhub.poison import PoisonQueue
from durablehub.taskhub.queues import TaskHubQueue, ReceivedMessage
from durablehub.taskhub.metering import RequestCounter
from durablehub.taskhub.names import TaskHubNames, partition_index
from durablehub.telemetry.metrics import POISON_MOVES


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHubDescription:
    """What ``durablehub hub info`` shows."""

    info: TaskHubInfo
    names: TaskHubNames
    queue_lengths: dict[str, int]
    # Queues, tables and containers not made yet (a hub being made, made by older code, or
    # partly deleted): a start makes what it needs, a worker's start all of them.
    missing: list[str]


class TaskHub:
    """The adapters of one hub over one set of clients. Use ``with`` or ``close()``.
    ``policies``: extra azure-core policies for its clients (see ``StorageClients``)."""

    def __init__(
        self,
        settings: TaskHubSettings,
        *,
        clients: StorageClients | None = None,
        counter: RequestCounter | None = None,
        policies: Sequence[PolicyFactory] = (),
    ) -> None:
        self.settings = settings
        self.names = settings.names
        self._owns_clients = clients is None
        self.clients = clients or StorageClients(settings, counter=counter, policies=policies)
        self.large_messages = LargeMessageStore(self.clients, self.names)
        self.history = HistoryTable(self.clients, self.names, self.large_messages)
        self.instances = InstancesTable(self.clients, self.names, self.large_messages)
        self.leases = PartitionLeaseStore(self.clients, self.names)
        self.control_queues = [
            TaskHubQueue(self.clients, name, self.large_messages) for name in self.names.control_queues
        ]
        self.work_items = TaskHubQueue(self.clients, self.names.work_item_queue, self.large_messages)
        self.poison = PoisonQueue(  # made on first use, not by create()
            self.clients,
            self.names.poison_queue,
            self.large_messages,
            control_queues=self.control_queues,
            work_items=self.work_items,
        )

    @property
    def counter(self) -> RequestCounter:
        return self.clients.counter

    def control_queue_for(self, instance_id: str) -> TaskHubQueue:
        return self.control_queues[partition_index(instance_id, self.names.partition_count)]

    def create(self) -> TaskHubInfo:
        """Create every resource that is missing; return the hub's ``taskhub.json``.

        ``taskhub.json`` is written last, so that its presence means the hub is whole: a client
        that finds it can write at once. A hub that has one already (made by older durablehub
        or the C# provider, which write it first, or half deleted) gets what it lacks.

        Raises:
            PartitionCountMismatchError: the hub exists with another partition count.
        """
        info = self._first_contact()
        if info is not None:
            self._check_partition_count(info)
            self._make_resources()
            return info
        self._make_resources()
        mine = TaskHubInfo(
            task_hub_name=self.names.hub,
            created_at=datetime.now(UTC),
            partition_count=self.names.partition_count,
        )
        # Only if absent: of two creators at once (a client and a worker, say), one wins and
        # the other reads its partition count.
        found = self.leases.create_task_hub_info(mine)
        if found is None:
            return mine
        if found.partition_count < self.names.partition_count:
            self._remove_partitions_beyond(found.partition_count)
        self._check_partition_count(found)
        return found

    def _make_resources(self) -> None:
        """Everything but ``taskhub.json``, each made only if missing. The lease container
        first: while it exists without ``taskhub.json``, readers know the hub is being made."""
        self.leases.create(self.names.control_queues)
        self.history.create()
        self.instances.create()
        self.work_items.create()
        for queue in self.control_queues:
            queue.create()
        self.large_messages.create()

    def _remove_partitions_beyond(self, count: int) -> None:
        """Remove the control queues and lease blobs this creator made for partitions the
        hub, made with ``count`` partitions by another creator at the same time, does not have."""
        extra = self.names.control_queues[count:]
        self.leases.delete_leases(extra)
        for queue in self.control_queues[count:]:
            queue.delete()

    def _check_partition_count(self, info: TaskHubInfo) -> None:
        if info.partition_count != self.names.partition_count:
            raise PartitionCountMismatchError(
                self.names.hub, info.partition_count, self.names.partition_count
            )

    def open(self) -> TaskHubInfo:
        """Check the hub exists with the configured partition count.

        Raises:
            TaskHubNotFoundError: no ``taskhub.json``; run ``durablehub hub create``. Its
                ``being_made`` is True when the lease container exists (a worker is making it).
            PartitionCountMismatchError: it exists with another partition count.
        """
        info = self._first_contact()
        if info is None:
            if self.leases.container_exists():  # a request only when the hub is not whole
                raise TaskHubNotFoundError(
                    f"task hub {self.names.hub!r} is being made (its container "
                    f"{self.names.leases_container} exists, not yet its taskhub.json): a worker is "
                    "making it, or was stopped while making it; 'durablehub hub create' finishes it",
                    being_made=True,
                )
            raise TaskHubNotFoundError(
                f"task hub {self.names.hub!r} does not exist in this storage account "
                f"(no {self.names.leases_container}/taskhub.json); create it with 'durablehub hub create'"
            )
        self._check_partition_count(info)
        return info

    def _first_contact(self) -> TaskHubInfo | None:
        """Read ``taskhub.json``, the first request of every client and worker, failing fast
        and clearly: a refused credential is never retried, and an unreachable endpoint is
        retried once rather than for the SDK's ~10-18 s of connection retries."""
        try:
            return self.leases.read_task_hub_info(retry_connect=1)
        except ServiceRequestError as exc:
            raise StorageUnreachableError(
                f"cannot reach the storage account {self.clients.account.account_name!r}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        except HttpResponseError as exc:
            if exc.status_code not in (401, 403):
                raise
            raise StorageAuthenticationError(
                f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
                f"SAS token or identity for account {self.clients.account.account_name!r}"
            ) from exc

    def quarantine(
        self, queue: TaskHubQueue, message: ReceivedMessage, *, reason: str, reported: bool = False
    ) -> bool:
        """Move a message that can never be processed to ``{hub}-poison`` (#553), so it stops
        blocking ``queue``; logged with the reason. False if it stays where it was."""
        moved = self.poison.move(queue, message, reason=reason, reported=reported)
        if moved:
            POISON_MOVES.add(1, {"queue": queue.name})
        return moved

    def describe(self) -> TaskHubDescription:
        info = self.open()
        lengths: dict[str, int] = {}
        missing: list[str] = []
        for queue in [*self.control_queues, self.work_items]:
            try:
                lengths[queue.name] = queue.approximate_count()
            except ResourceNotFoundError:
                missing.append(queue.name)
        if self.poison.exists():
            lengths[self.poison.name] = self.poison.approximate_count()
        for name, store in (
            (self.names.history_table, self.history),
            (self.names.instances_table, self.instances),
            (self.names.large_messages_container, self.large_messages),
        ):
            if not store.exists():
                missing.append(name)
        return TaskHubDescription(info=info, names=self.names, queue_lengths=lengths, missing=missing)

    def delete(self) -> None:
        """Delete every resource of the hub (idempotent). Its instances and history are gone."""
        info = self.leases.read_task_hub_info()
        count = max(self.names.partition_count, info.partition_count if info else 0)
        control = [
            TaskHubQueue(self.clients, name, self.large_messages)
            for name in TaskHubNames(self.names.hub, count).control_queues
        ]
        for queue in [*control, self.work_items, self.poison]:
            queue.delete()
        self.history.delete_table()
        self.instances.delete_table()
        self.large_messages.delete_container()
        self.leases.delete_container()

    def close(self) -> None:
        if self._owns_clients:
            self.clients.close()

    def __enter__(self) -> TaskHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
