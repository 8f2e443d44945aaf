# Generated from durablehub/taskhub/aio/leases.py by scripts/unasync.py: edit that file instead.
"""PartitionLeaseStore: blob leases on partitions, and ``taskhub.json``, in ``{hub}-leases``.

The layout of the reference's blob partition manager (legacy, v1 lease set ``default/``):
one blob per control queue whose content is ``{PartitionId, Owner, Token, Epoch}``. ``Token``
is the current blob-lease id; publishing it is what lets another worker steal the lease with
ChangeLease, or, gentler, ask for it: ``request_handover`` writes the blob metadata
``pendingowner`` under that lease id, and the owner drains and releases. ``Epoch`` grows on
every acquire or steal.

durablehub also writes the content's owner, token and epoch as blob metadata (``dhowner``,
``dhtoken``, ``dhepoch``; the reference ignores metadata, and rewrites it with the blob), so a
balancer sees every partition in one listing instead of one read per lease blob: a worker's
idle cost. A blob without them (written by the reference) is read as before.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient

from durablehub.errors import LeaseLostError
from durablehub.taskhub import wire
from durablehub.taskhub.connections import StorageClients
from durablehub.taskhub.names import TaskHubNames


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHubInfo:
    """Content of ``taskhub.json`` (Newtonsoft defaults: PascalCase, ISO date)."""

    task_hub_name: str
    created_at: datetime
    partition_count: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "TaskHubName": self.task_hub_name,
                "CreatedAt": wire.format_datetime(self.created_at),
                "PartitionCount": self.partition_count,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> TaskHubInfo:
        data = json.loads(text)
        return cls(
            task_hub_name=data["TaskHubName"],
            created_at=wire.parse_datetime(data["CreatedAt"]),
            partition_count=int(data["PartitionCount"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionLease:
    """A lease blob's content. ``token`` is the blob-lease id while someone owns it."""

    partition_id: str
    owner: str | None = None
    token: str | None = None
    epoch: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"PartitionId": self.partition_id, "Owner": self.owner, "Token": self.token, "Epoch": self.epoch},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> PartitionLease:
        data = json.loads(text)
        return cls(
            partition_id=data["PartitionId"],
            owner=data.get("Owner"),
            token=data.get("Token"),
            epoch=int(data.get("Epoch") or 0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseState:
    """A lease blob as seen by a balancer: its content, whether a blob lease is held, and
    which worker asked the owner to hand the partition over (blob metadata, not content)."""

    lease: PartitionLease
    leased: bool
    pending_owner: str | None = None

    @property
    def is_available(self) -> bool:
        """Free to acquire: no live blob lease (expired or released) or no owner recorded."""
        return not self.leased or not self.lease.owner


# Blob metadata naming the worker that asked the owner for a partition (a drain-then-release).
PENDING_OWNER_METADATA = "pendingowner"
_OWNER, _TOKEN, _EPOCH = "dhowner", "dhtoken", "dhepoch"  # the content, mirrored (see above)


def _mirror(lease: PartitionLease) -> dict[str, str]:
    """The content as metadata; none if a value cannot travel in a header (non-ASCII)."""
    mirrored = {_EPOCH: str(lease.epoch), _OWNER: lease.owner or "", _TOKEN: lease.token or ""}
    if not all(value.isascii() for value in mirrored.values()):
        return {}
    return {k: v for k, v in mirrored.items() if v}


def _mirrored(partition_id: str, metadata: dict[str, str]) -> PartitionLease | None:
    if _EPOCH not in metadata:
        return None
    return PartitionLease(
        partition_id=partition_id,
        owner=metadata.get(_OWNER),
        token=metadata.get(_TOKEN),
        epoch=int(metadata[_EPOCH]),
    )


def _lease_conflict(exc: HttpResponseError) -> bool:
    return exc.status_code in (409, 412)


class PartitionLeaseStore:
    def __init__(self, clients: StorageClients, names: TaskHubNames) -> None:
        self._names = names
        self._container = clients.blob.get_container_client(names.leases_container)
        self.container_name = names.leases_container

    def _blob(self, partition_id: str) -> BlobClient:
        return self._container.get_blob_client(self._names.lease_blob(partition_id))

    def create(self, partition_ids: list[str]) -> None:
        """Create the container and a lease blob per partition; existing ones are kept."""
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        for partition_id in partition_ids:
            try:
                free = PartitionLease(partition_id=partition_id)
                self._blob(partition_id).upload_blob(
                    free.to_json(), overwrite=False, metadata=_mirror(free)
                )
            except ResourceExistsError:
                pass

    def delete_container(self) -> None:
        try:
            self._container.delete_container()
        except ResourceNotFoundError:
            pass

    def container_exists(self) -> bool:
        return bool(self._container.exists())

    def delete_leases(self, partition_ids: list[str]) -> None:
        """Delete the lease blobs of these partitions (those that exist)."""
        for partition_id in partition_ids:
            try:
                self._blob(partition_id).delete_blob()
            except ResourceNotFoundError:
                pass

    def read_task_hub_info(self, **request_options: Any) -> TaskHubInfo | None:
        blob = self._container.get_blob_client(TaskHubNames.TASK_HUB_INFO_BLOB)
        try:
            stream = blob.download_blob(**request_options)
        except ResourceNotFoundError:
            return None
        return TaskHubInfo.from_json((stream.readall()).decode("utf-8"))

    def create_task_hub_info(self, info: TaskHubInfo) -> TaskHubInfo | None:
        """Write ``taskhub.json`` unless it exists (creating the container if need be); None if
        this wrote it, else the one another creator wrote first."""
        blob = self._container.get_blob_client(TaskHubNames.TASK_HUB_INFO_BLOB)
        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        try:
            blob.upload_blob(info.to_json(), overwrite=False)
        except ResourceExistsError:
            found = self.read_task_hub_info()
            assert found is not None  # it exists: that is why the write was refused
            return found
        return None

    def get(self, partition_id: str) -> LeaseState:
        blob = self._blob(partition_id)
        stream = blob.download_blob()
        content = PartitionLease.from_json((stream.readall()).decode("utf-8"))
        leased = stream.properties.lease.state == "leased"
        pending = (stream.properties.metadata or {}).get(PENDING_OWNER_METADATA)
        return LeaseState(lease=content, leased=leased, pending_owner=pending if leased else None)

    def list(self) -> list[LeaseState]:
        """Every partition's lease, in partition order: one listing of the lease blobs, and a
        read of each blob whose content is not mirrored in its metadata."""
        found = {
            blob.name: blob
            for blob in self._container.list_blobs(
                name_starts_with=f"{TaskHubNames.LEASE_TYPE}/", include=["metadata"]
            )
        }
        states = []
        for index in range(self._names.partition_count):
            partition_id = self._names.control_queue(index)
            blob = found.get(self._names.lease_blob(partition_id))
            metadata = dict(blob.metadata or {}) if blob is not None else {}
            content = _mirrored(partition_id, metadata)
            if blob is None or content is None:
                states.append(self.get(partition_id))
                continue
            leased = blob.lease.state == "leased"
            pending = metadata.get(PENDING_OWNER_METADATA)
            states.append(LeaseState(lease=content, leased=leased, pending_owner=pending if leased else None))
        return states

    def acquire(self, partition_id: str, owner: str, *, duration: timedelta) -> PartitionLease | None:
        """Take a free partition. None if another worker holds its blob lease."""
        blob = self._blob(partition_id)
        lease_client = BlobLeaseClient(blob)
        try:
            lease_client.acquire(lease_duration=int(duration.total_seconds()))
        except HttpResponseError as exc:
            if _lease_conflict(exc):
                return None
            raise
        return self._take(partition_id, owner, lease_client.id)

    def steal(self, partition_id: str, owner: str, *, duration: timedelta) -> PartitionLease | None:
        """Take a partition another worker holds, with ChangeLease from its published token."""
        state = self.get(partition_id)
        if not state.leased:
            return self.acquire(partition_id, owner, duration=duration)
        if not state.lease.token:
            return None
        lease_client = BlobLeaseClient(self._blob(partition_id), lease_id=state.lease.token)
        try:
            lease_client.change(proposed_lease_id=str(uuid.uuid4()))
        except HttpResponseError as exc:
            if _lease_conflict(exc):
                return None  # the token moved on: someone else won the race
            raise
        return self._take(partition_id, owner, lease_client.id, epoch=state.lease.epoch)

    def request_handover(self, state: LeaseState, new_owner: str) -> bool:
        """Ask the owner of a leased partition to drain it and release it to ``new_owner``.

        Written as blob metadata with the lease id the owner published (as a steal does), so
        the content keeps the reference's format and the owner's release (which rewrites the
        blob) clears it. False if the lease has moved on since ``state`` was read.
        """
        if not state.leased or not state.lease.token:
            return False
        try:
            self._blob(state.lease.partition_id).set_blob_metadata(
                {PENDING_OWNER_METADATA: new_owner, **_mirror(state.lease)}, lease=state.lease.token
            )
        except HttpResponseError as exc:
            if _lease_conflict(exc):
                return False
            raise
        return True

    def _take(
        self, partition_id: str, owner: str, lease_id: str, *, epoch: int | None = None
    ) -> PartitionLease:
        blob = self._blob(partition_id)
        if epoch is None:
            stream = blob.download_blob(lease=lease_id)
            epoch = PartitionLease.from_json((stream.readall()).decode("utf-8")).epoch
        lease = PartitionLease(partition_id=partition_id, owner=owner, token=lease_id, epoch=epoch + 1)
        blob.upload_blob(
            lease.to_json(),
            overwrite=True,
            lease=lease_id,  # type: ignore[arg-type]  # a lease id, as documented
            metadata=_mirror(lease),
        )
        return lease

    def renew(self, lease: PartitionLease) -> None:
        """Renew our blob lease. Raises LeaseLostError if it was stolen or expired and retaken."""
        assert lease.token is not None
        try:
            BlobLeaseClient(self._blob(lease.partition_id), lease_id=lease.token).renew()
        except HttpResponseError as exc:
            if _lease_conflict(exc):
                raise LeaseLostError(lease.partition_id, "another worker holds it now") from exc
            raise

    def release(self, lease: PartitionLease) -> None:
        """Hand the partition back at once (graceful stop, balancing). A lost lease is no error."""
        assert lease.token is not None
        blob = self._blob(lease.partition_id)
        released = PartitionLease(partition_id=lease.partition_id, owner=None, token=None, epoch=lease.epoch)
        try:
            blob.upload_blob(
                released.to_json(),
                overwrite=True,
                lease=lease.token,  # type: ignore[arg-type]
                metadata=_mirror(released),
            )
            BlobLeaseClient(blob, lease_id=lease.token).release()
        except HttpResponseError as exc:
            if not _lease_conflict(exc):
                raise
