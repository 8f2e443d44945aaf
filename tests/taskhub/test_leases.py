"""Blob-lease primitives for partitions: acquire, renew, release, steal, epochs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from durablehub.errors import LeaseLostError
from durablehub.taskhub.hub import TaskHub

pytestmark = pytest.mark.azurite
LEASE = timedelta(seconds=15)


def test_acquire_publishes_owner_token_and_epoch(hub: TaskHub) -> None:
    pid = hub.names.control_queues[0]
    lease = hub.leases.acquire(pid, "worker-a", duration=LEASE)
    assert lease is not None and lease.owner == "worker-a" and lease.epoch == 1 and lease.token
    state = hub.leases.get(pid)
    assert state.leased and state.lease == lease and not state.is_available
    assert hub.leases.acquire(pid, "worker-b", duration=LEASE) is None  # held: no double ownership
    hub.leases.renew(lease)


def test_release_hands_the_partition_back_at_once(hub: TaskHub) -> None:
    pid = hub.names.control_queues[1]
    lease = hub.leases.acquire(pid, "worker-a", duration=LEASE)
    hub.leases.release(lease)
    state = hub.leases.get(pid)
    assert not state.leased and state.lease.owner is None and state.lease.token is None and state.is_available
    again = hub.leases.acquire(pid, "worker-b", duration=LEASE)
    assert again is not None and again.epoch == 2 and again.owner == "worker-b"


def test_steal_changes_the_lease_and_the_victim_loses_it(hub: TaskHub) -> None:
    pid = hub.names.control_queues[2]
    victim = hub.leases.acquire(pid, "worker-a", duration=LEASE)
    thief = hub.leases.steal(pid, "worker-b", duration=LEASE)
    assert thief is not None and thief.owner == "worker-b" and thief.epoch == victim.epoch + 1
    assert thief.token != victim.token
    with pytest.raises(LeaseLostError, match=pid):
        hub.leases.renew(victim)
    hub.leases.release(victim)  # a stale release is harmless ...
    assert hub.leases.get(pid).lease.owner == "worker-b"  # ... and does not free the thief's lease
    hub.leases.renew(thief)
    assert hub.leases.steal(pid, "worker-c", duration=LEASE) is not None


def test_expired_lease_of_a_dead_worker_can_be_taken(hub: TaskHub) -> None:
    pid = hub.names.control_queues[3]
    dead = hub.leases.acquire(pid, "dead-worker", duration=LEASE)
    assert hub.leases.acquire(pid, "worker-b", duration=LEASE) is None
    time.sleep(LEASE.total_seconds() + 1)
    state = hub.leases.get(pid)
    assert not state.leased and state.lease.owner == "dead-worker" and state.is_available
    taken = hub.leases.acquire(pid, "worker-b", duration=LEASE)
    assert taken is not None and taken.epoch == dead.epoch + 1
    with pytest.raises(LeaseLostError):
        hub.leases.renew(dead)


def test_list_returns_every_partition(hub: TaskHub) -> None:
    states = hub.leases.list()
    assert [s.lease.partition_id for s in states] == hub.names.control_queues
    assert all(s.is_available and s.lease.epoch == 0 for s in states)


def test_a_handover_request_is_metadata_the_owner_sees_and_its_release_clears(hub: TaskHub) -> None:
    pid = hub.names.control_queues[0]
    owner = hub.leases.acquire(pid, "worker-a", duration=LEASE)
    assert owner is not None
    assert hub.leases.request_handover(hub.leases.get(pid), "worker-b") is True
    state = hub.leases.get(pid)
    assert state.pending_owner == "worker-b" and state.lease == owner  # the content is untouched
    assert [s.pending_owner for s in hub.leases.list()] == ["worker-b", None, None, None]
    hub.leases.renew(owner)  # the owner keeps its lease while it drains
    hub.leases.release(owner)
    released = hub.leases.get(pid)
    assert released.is_available and released.pending_owner is None
    taken = hub.leases.acquire(pid, "worker-b", duration=LEASE)
    assert taken is not None and taken.epoch == owner.epoch + 1


def test_a_handover_request_on_a_lease_that_moved_on_is_refused(hub: TaskHub) -> None:
    pid = hub.names.control_queues[1]
    hub.leases.acquire(pid, "worker-a", duration=LEASE)
    seen = hub.leases.get(pid)
    thief = hub.leases.steal(pid, "worker-c", duration=LEASE)
    assert thief is not None
    assert hub.leases.request_handover(seen, "worker-b") is False  # the token it saw is gone
    assert hub.leases.get(pid).pending_owner is None
    assert hub.leases.request_handover(hub.leases.get(hub.names.control_queues[2]), "worker-b") is False


def test_a_balancer_sees_every_lease_in_one_listing(hub: TaskHub) -> None:
    """Owner, token and epoch are mirrored in the lease blobs' metadata, so listing them is one
    request however many partitions there are: a worker's idle cost. Content stays the
    reference's, and a blob without the mirror (written by the reference) is still read right."""
    from datetime import timedelta

    lease = hub.leases.acquire(hub.names.control_queue(1), "w1", duration=timedelta(seconds=15))
    assert lease is not None
    hub.leases.request_handover(hub.leases.get(lease.partition_id), "w2")
    before = hub.counter.snapshot()
    states = hub.leases.list()
    spent = {op: n - before.get(op, 0) for op, n in hub.counter.snapshot().items() if n > before.get(op, 0)}
    assert spent == {"blob.list": 1}
    assert [s.lease.owner for s in states] == [None, "w1", None, None]
    assert states[1].leased and states[1].lease.epoch == 1 and states[1].pending_owner == "w2"
    assert states[1] == hub.leases.get(lease.partition_id)  # the same as reading the blob

    # Written by the reference: content only, no metadata.
    blob = hub.clients.blob.get_container_client(hub.names.leases_container).get_blob_client(
        hub.names.lease_blob(hub.names.control_queue(2))
    )
    blob.upload_blob('{"PartitionId":"x","Owner":"dotnet","Token":null,"Epoch":7}', overwrite=True)
    assert hub.leases.list()[2].lease.owner == "dotnet" and hub.leases.list()[2].lease.epoch == 7
