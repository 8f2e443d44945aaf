"""PartitionBalancer: which control queues this worker owns, through blob leases.

Every ``balance_interval`` it reads the lease blobs and aims at ``ceil(partitions / workers)``
partitions, counting as workers the distinct owners of live leases plus itself: it takes free
or expired leases first, then steals one lease from a worker holding more than its share
(ChangeLease with the token that worker published), as the reference's blob lease manager
does. Every ``lease_renew`` it renews what it owns; a renewal that fails means the lease was
stolen or expired, and the partition is stopped at once (the sentinel ETag protects any commit
still in flight). On stop it releases every lease, so others take over without waiting for
expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable

from durablehub.errors import LeaseLostError
from durablehub.runtime.options import WorkerOptions
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.leases import LeaseState, PartitionLease

_LOG = logging.getLogger("durablehub.worker")


class PartitionBalancer:
    def __init__(
        self,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        worker_id: str,
        *,
        on_acquired: Callable[[str], Awaitable[None]],
        on_lost: Callable[[str], Awaitable[None]],
    ) -> None:
        self._hub = hub
        self._options = options
        self.worker_id = worker_id
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self.owned: dict[str, PartitionLease] = {}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._balance_loop(), name="balance"),
            asyncio.create_task(self._renew_loop(), name="renew leases"),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def release_all(self) -> None:
        async with self._lock:
            for partition_id, lease in list(self.owned.items()):
                del self.owned[partition_id]
                with contextlib.suppress(Exception):
                    await self._hub.leases.release(lease)

    async def _balance_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.balance()
            except Exception:
                _LOG.exception("partition balancing failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._options.balance_interval_seconds)

    async def balance(self) -> None:
        async with self._lock:
            states = await self._hub.leases.list()
            target = self._target(states)
            for state in states:
                if len(self.owned) >= target:
                    break
                pid = state.lease.partition_id
                if pid in self.owned or not state.is_available:
                    continue
                lease = await self._hub.leases.acquire(
                    pid, self.worker_id, duration=self._options.lease_duration
                )
                if lease is not None:
                    await self._take(lease, how="acquired")
            if len(self.owned) < target:
                await self._steal_one(states, target)

    def _target(self, states: list[LeaseState]) -> int:
        owners = {s.lease.owner for s in states if s.leased and s.lease.owner} | {self.worker_id}
        return math.ceil(len(states) / len(owners))

    async def _steal_one(self, states: list[LeaseState], target: int) -> None:
        held = Counter(
            s.lease.owner for s in states if s.leased and s.lease.owner and s.lease.owner != self.worker_id
        )
        if not held:
            return
        victim, count = held.most_common(1)[0]
        if count <= target:
            return
        candidate = next(s for s in states if s.leased and s.lease.owner == victim)
        lease = await self._hub.leases.steal(
            candidate.lease.partition_id, self.worker_id, duration=self._options.lease_duration
        )
        if lease is not None:
            await self._take(lease, how=f"stole from {victim}")

    async def _take(self, lease: PartitionLease, *, how: str) -> None:
        self.owned[lease.partition_id] = lease
        _LOG.info(
            "worker %s %s partition %s (epoch %d)", self.worker_id, how, lease.partition_id, lease.epoch
        )
        await self._on_acquired(lease.partition_id)

    async def _renew_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._options.lease_renew_seconds)
            if self._stopping.is_set():
                return
            for partition_id, lease in list(self.owned.items()):
                try:
                    await self._hub.leases.renew(lease)
                except LeaseLostError:
                    await self._lose(partition_id)
                except Exception:
                    _LOG.warning("renewing the lease on %s failed; will retry", partition_id, exc_info=True)

    async def _lose(self, partition_id: str) -> None:
        async with self._lock:
            if self.owned.pop(partition_id, None) is not None:
                _LOG.warning("worker %s lost partition %s", self.worker_id, partition_id)
                await self._on_lost(partition_id)
