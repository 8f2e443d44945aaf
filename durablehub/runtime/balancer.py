"""PartitionBalancer: which control queues this worker owns, through blob leases.

Every ``balance_interval`` it reads the lease blobs and aims at ``ceil(partitions / workers)``
partitions, counting as workers the distinct owners of live leases plus itself. It takes free
or expired leases first. Below its share, it asks a worker holding more than its share for
one partition instead of taking it (``request_handover``: the ``pendingowner`` blob
metadata), and polls every second until that lease is released; only an owner that has not
released it within ``lease_duration`` (an older worker, or a hung one) is stolen from with
ChangeLease, as the reference's blob lease manager does.

An owner that sees a pending owner on one of its partitions hands it over: its processor
stops dequeuing and lets in-flight episodes finish (at most ``drain_timeout``) while the
lease is still renewed, then the lease is released -- so nothing the old owner commits
overlaps what the new one does, and the new owner waits neither for an expiry nor for the
sentinel ETag to reject a stale commit. A graceful stop drains and releases every partition
the same way. A renewal that fails means the lease was stolen or expired: that partition is
stopped at once (the sentinel ETag protects any commit still in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from durablehub.errors import LeaseLostError
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.outage import outage_of
from durablehub.runtime.supervision import report_failure, supervise
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.leases import LeaseState, PartitionLease
from durablehub.telemetry.metrics import LEASE_TAKEOVERS, watch_partitions

_LOG = logging.getLogger("durablehub.worker")
_PENDING_POLL_SECONDS = 1.0  # how often a worker waiting for a handover looks again
# A release is a courtesy (an unreleased lease expires after lease_duration): one that cannot
# reach storage in this time is given up, rather than waiting out the SDK's retries.
_RELEASE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Request:
    """A handover this worker asked for: of which lease (owner, epoch), and since when."""

    owner: str
    epoch: int
    since: float


@dataclass(slots=True)
class MoveCounts:
    """How partitions moved to and from this worker (for logs and tests)."""

    handed_over: int = 0  # released to a worker that asked, after draining
    received: int = 0  # acquired after its owner released it on our request
    stolen: int = 0  # taken with ChangeLease from an owner that did not release in time
    lost: int = 0  # taken from us (expired, or stolen by a worker that gave up waiting)


class PartitionBalancer:
    def __init__(
        self,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        worker_id: str,
        *,
        on_acquired: Callable[[str], Awaitable[None]],
        on_lost: Callable[[str], Awaitable[None]],
        on_drain: Callable[[str], Awaitable[None]],
    ) -> None:
        self._hub = hub
        self._options = options
        self.worker_id = worker_id
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._on_drain = on_drain
        self.owned: dict[str, PartitionLease] = {}
        self.moves = MoveCounts()
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._requested: dict[str, _Request] = {}
        # Handed over: (when, lease epoch) -- not taken back at once, unless it has been taken
        # (a higher epoch) and released again since, e.g. by a receiver that is stopping.
        self._released_at: dict[str, tuple[float, int]] = {}
        self._stopping = asyncio.Event()
        self._balance_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        watch_partitions(self)

    def start(self) -> None:
        self._balance_task = supervise(self._balance_loop, name="partition balancing")
        self._renew_task = supervise(self._renew_loop, name="lease renewal")

    async def stop(self) -> None:
        """Graceful stop: no more balancing; drain and release every partition (renewing
        the leases meanwhile), then stop renewing."""
        self._stopping.set()
        await _cancel(self._balance_task)
        async with self._lock:
            for partition_id in self.owned:
                self._start_handover(partition_id, why="stopping")
            draining = list(self._draining.values())
        if draining:
            await asyncio.wait(draining)
        await _cancel(self._renew_task)
        await self.release_all()

    async def release_all(self) -> None:
        async with self._lock:
            leases = list(self.owned.values())
            self.owned.clear()
        await asyncio.gather(*(self._release(lease) for lease in leases))

    async def _release(self, lease: PartitionLease) -> bool:
        try:
            await asyncio.wait_for(self._hub.leases.release(lease), timeout=_RELEASE_SECONDS)
        except Exception as exc:
            outage_of(self._hub).failed(
                f"releasing partition {lease.partition_id} failed; it will expire", exc
            )
            return False
        return True

    async def _balance_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.balance()
            except Exception as exc:
                outage_of(self._hub).failed("partition balancing failed; retrying", exc)
            wait = _PENDING_POLL_SECONDS if self._requested else self._options.balance_interval_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    async def balance(self) -> None:
        async with self._lock:
            states = await self._hub.leases.list()
            for state in states:
                pid = state.lease.partition_id
                if pid in self.owned and state.pending_owner not in (None, self.worker_id):
                    self._start_handover(pid, why=f"{state.pending_owner} asked for it")
            target = self._target(states)
            now = time.monotonic()
            for state in states:
                if len(self.owned) >= target:
                    break
                pid = state.lease.partition_id
                if pid in self.owned or not state.is_available:
                    continue
                if self._just_handed_over(state, now):
                    continue  # we just handed it to someone who asked: let them take it
                lease = await self._hub.leases.acquire(
                    pid, self.worker_id, duration=self._options.lease_duration
                )
                if lease is not None:
                    received = self._requested.pop(pid, None) is not None
                    self.moves.received += received
                    if not received and state.lease.owner not in (None, "", self.worker_id):
                        LEASE_TAKEOVERS.add(1)  # its owner never released it: the lease expired
                    await self._take(lease, how="received" if received else "acquired")
            self._forget_stale_requests(states)
            if len(self.owned) < target:
                await self._ask_for_one(states, target)

    def _just_handed_over(self, state: LeaseState, now: float) -> bool:
        released = self._released_at.get(state.lease.partition_id)
        if released is None:
            return False
        at, epoch = released
        return state.lease.epoch <= epoch and now - at < self._options.lease_duration_seconds

    def _target(self, states: list[LeaseState]) -> int:
        owners = {s.lease.owner for s in states if s.leased and s.lease.owner} | {self.worker_id}
        return math.ceil(len(states) / len(owners))

    def _forget_stale_requests(self, states: list[LeaseState]) -> None:
        for state in states:
            request = self._requested.get(state.lease.partition_id)
            if request is None:
                continue
            # Leased without an owner is a release half done (content rewritten, lease not yet
            # released): the handover we asked for, still coming.
            if state.leased and not state.lease.owner:
                continue
            moved = state.leased and (state.lease.owner, state.lease.epoch) != (request.owner, request.epoch)
            if state.lease.partition_id in self.owned or moved or not state.leased:
                del self._requested[state.lease.partition_id]  # taken, elsewhere, or free but not needed

    async def _ask_for_one(self, states: list[LeaseState], target: int) -> None:
        """Ask the most loaded worker for one partition; steal it if it ignored the request."""
        now = time.monotonic()
        for pid, request in list(self._requested.items()):
            if now - request.since < self._options.lease_duration_seconds:
                return  # one handover at a time, as the reference steals one lease per pass
            state = next(s for s in states if s.lease.partition_id == pid)
            del self._requested[pid]
            lease = await self._hub.leases.steal(pid, self.worker_id, duration=self._options.lease_duration)
            if lease is not None:
                self.moves.stolen += 1
                LEASE_TAKEOVERS.add(1)
                await self._take(lease, how=f"stole from {state.lease.owner} (no release within the lease)")
            return
        held = Counter(
            s.lease.owner for s in states if s.leased and s.lease.owner and s.lease.owner != self.worker_id
        )
        if not held:
            return
        victim, count = held.most_common(1)[0]
        if count <= target:
            return
        candidate = next(
            (s for s in states if s.leased and s.lease.owner == victim and s.pending_owner is None), None
        )
        if candidate is None:
            return  # everything it holds is already being handed over
        if await self._hub.leases.request_handover(candidate, self.worker_id):
            pid = candidate.lease.partition_id
            self._requested[pid] = _Request(owner=victim, epoch=candidate.lease.epoch, since=now)
            _LOG.info("worker %s asked %s to hand partition %s over", self.worker_id, victim, pid)

    async def _take(self, lease: PartitionLease, *, how: str) -> None:
        self.owned[lease.partition_id] = lease
        _LOG.info(
            "worker %s %s partition %s (epoch %d)", self.worker_id, how, lease.partition_id, lease.epoch
        )
        await self._on_acquired(lease.partition_id)

    def _start_handover(self, partition_id: str, *, why: str) -> None:
        if partition_id not in self._draining:
            _LOG.info("worker %s draining partition %s: %s", self.worker_id, partition_id, why)
            task = asyncio.create_task(self._hand_over(partition_id), name=f"handing over {partition_id}")
            task.add_done_callback(report_failure)
            self._draining[partition_id] = task

    async def _hand_over(self, partition_id: str) -> None:
        """Drain (the lease is still renewed meanwhile), then release the lease."""
        try:
            await self._on_drain(partition_id)
        except Exception:
            _LOG.exception("draining partition %s failed; releasing it anyway", partition_id)
        async with self._lock:
            lease = self.owned.pop(partition_id, None)
            self._draining.pop(partition_id, None)
        if lease is None:
            return  # lost meanwhile
        # Outside the lock, so that the partitions of a stop are released at once. Meanwhile
        # the lease is neither renewed (not owned) nor taken again (not available: still ours).
        released = await self._release(lease)
        self._released_at[partition_id] = (time.monotonic(), lease.epoch)
        self.moves.handed_over += not self._stopping.is_set()
        if released:
            _LOG.info("worker %s released partition %s", self.worker_id, partition_id)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._options.lease_renew_seconds)
            # All at once: during a storage outage each renewal can spend many seconds in SDK
            # retries, and one after the other they would let the last leases expire.
            await asyncio.gather(*(self._renew(pid, lease) for pid, lease in list(self.owned.items())))

    async def _renew(self, partition_id: str, lease: PartitionLease) -> None:
        try:
            await self._hub.leases.renew(lease)
        except LeaseLostError:
            await self._lose(partition_id)
        except Exception as exc:
            outage_of(self._hub).failed(f"renewing the lease on {partition_id} failed", exc)

    async def _lose(self, partition_id: str) -> None:
        async with self._lock:
            if self.owned.pop(partition_id, None) is None:
                return
            _LOG.warning("worker %s lost partition %s", self.worker_id, partition_id)
            self.moves.lost += 1
            if partition_id in self._draining:
                return  # already stopping; its release will find nothing to release
        await self._on_lost(partition_id)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
