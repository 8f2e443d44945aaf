"""Worker: runs an App's orchestrations and activities against a task hub.

A context manager, sync or async. The sync form runs the worker's event loop in a
background thread, so ``with Worker(app, settings): ...`` works in plain scripts; the async
form (``async with``) runs on the caller's loop. No protocol logic lives here: partition
ownership is ``runtime.balancer``, each owned control queue is ``runtime.partition``,
episodes are ``runtime.orchestrations``, activities are ``runtime.activities``, and where
their code runs is ``runtime.hosting`` (an App in this process; the sidecar passes its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from types import TracebackType

from durablehub.app import App
from durablehub.runtime import nearby
from durablehub.runtime.activities import ActivityRunner
from durablehub.runtime.balancer import MoveCounts, PartitionBalancer
from durablehub.runtime.delivery import Delivery
from durablehub.runtime.hosting import InProcessCode, UserCode
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.orchestrations import OrchestrationRunner
from durablehub.runtime.partition import ControlQueueProcessor
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.connections import PolicyFactory
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.metering import RequestCounter
from durablehub.taskhub.names import partition_index
from durablehub.versioning import VersioningOptions

_LOG = logging.getLogger("durablehub.worker")


class Worker:
    """Process orchestrations (on owned partitions) and activities (any) of ``app``.

    ``app`` is an ``App``, run in this process, or any ``runtime.hosting.UserCode`` (the
    sidecar's connected SDK workers). ``versioning`` (``durablehub.versioning``) is checked
    before every episode; without it, ``options`` (``DURABLEHUB_VERSION``, ...) give it.
    ``standby=True`` starts with the hub open but no partition and no work item taken, until
    ``activate_async``; ``standby_async`` gives them back (the sidecar, while no SDK worker is
    connected to run their code)."""

    def __init__(
        self,
        app: App | UserCode,
        settings: TaskHubSettings,
        *,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
        counter: RequestCounter | None = None,
        storage_policies: Sequence[PolicyFactory] = (),
        versioning: VersioningOptions | None = None,
        standby: bool = False,
    ) -> None:
        self.app = app
        self.storage_policies = list(storage_policies)  # e.g. durablehub.testing.faults
        self.settings = settings
        self.options = options or WorkerOptions()
        if versioning is not None:  # given here, it replaces the options' (and DURABLEHUB_*) fields
            self.options = self.options.with_versioning(versioning)
        self.code: UserCode = (
            InProcessCode(
                app, self.options, max_payload_bytes=settings.max_payload_bytes, task_hub=settings.task_hub
            )
            if isinstance(app, App)
            else app
        )
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.counter = counter or RequestCounter()
        self._hub: AsyncTaskHub | None = None
        self._processors: dict[str, ControlQueueProcessor] = {}
        self._balancer: PartitionBalancer | None = None
        self._activities: ActivityRunner | None = None
        self._orchestrations: OrchestrationRunner | None = None
        self._delivery: Delivery | None = None
        self._nearby: nearby.Registration | None = None  # clients of this process wake partitions
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._standby = standby
        self._switch = asyncio.Lock()  # activating, going to standby and stopping: one at a time
        self._concurrency = asyncio.Semaphore(self.options.max_concurrent_orchestrations)
        self._drain_seconds = self.options.drain_timeout_seconds
        self._activities_before = 0  # executed by the runners of earlier activations

    # ----------------------------------------------------------------------- async API

    async def start_async(self) -> None:
        hub = self._hub = AsyncTaskHub(self.settings, counter=self.counter, policies=self.storage_policies)
        try:
            await hub.create()  # idempotent; refuses a partition-count mismatch, a wrong key, ...
        except BaseException:
            await hub.close()
            raise
        self._concurrency = asyncio.Semaphore(self.options.max_concurrent_orchestrations)
        self._delivery = Delivery(hub, self.options, partition_of=self._processor_of)
        self._orchestrations = OrchestrationRunner(self.code, hub, self.options, delivery=self._delivery)
        self._nearby = nearby.Registration(
            nearby.hub_key(self.settings), functools.partial(self._woken, asyncio.get_running_loop())
        )
        if not self._standby:
            await self.activate_async()
        _LOG.info(
            "worker %s started on %s%s",
            self.worker_id,
            self.settings.describe(),
            " (standby: no partitions or work items until activated)" if self._standby else "",
        )

    async def activate_async(self) -> None:
        """Take partitions and work items: balanced at once (free leases are owned when this
        returns), then every ``balance_interval``. Nothing to do if already active."""
        async with self._switch:
            hub, delivery = self._hub, self._delivery
            if self._balancer is not None or hub is None or delivery is None:
                return
            # The runner exists before the first balance: partitions taken there may run an
            # episode at once, whose work items it is handed in memory (started after it).
            activities = ActivityRunner(self.code, hub, self.options, report=delivery.to_instance)
            delivery.activities = activities
            balancer = PartitionBalancer(
                hub,
                self.options,
                self.worker_id,
                on_acquired=self._acquired,
                on_lost=self._lost,
                on_drain=self._drain,
            )
            try:
                await balancer.balance()  # own partitions before returning: the first start is quick
            except BaseException:
                # Active only once it all runs: a retry must find nothing half done, and what
                # this pass took (leases nobody would renew, their processors) goes back now.
                await asyncio.shield(balancer.stop())
                delivery.activities = None
                raise
            self._balancer, self._activities = balancer, activities
            balancer.start()
            activities.start()

    async def standby_async(self, *, drain_timeout: float) -> None:
        """Give partitions and work items back, as a stop does but within ``drain_timeout``,
        and keep the hub open (clients, ``activate_async`` again). Nothing to do if in standby."""
        async with self._switch:
            balancer, self._balancer = self._balancer, None
            activities, self._activities = self._activities, None
            if self._delivery is not None:
                self._delivery.activities = None
            stopping = None
            if activities is not None:  # at once, beside the partitions' drain
                self._activities_before += activities.executed
                stopping = asyncio.create_task(activities.stop(drain_timeout=drain_timeout))
            self._drain_seconds = drain_timeout
            try:
                if balancer is not None:
                    await balancer.stop()
                if stopping is not None:
                    await stopping
            finally:
                self._drain_seconds = self.options.drain_timeout_seconds

    async def _acquired(self, partition_id: str) -> None:
        assert self._hub is not None and self._orchestrations is not None
        self._forget(partition_id)  # what was cached before it last left is stale now
        index = int(partition_id.rsplit("-", 1)[1])
        processor = ControlQueueProcessor(
            partition_id,
            self._hub.control_queues[index],
            self._hub,
            self._orchestrations,
            self.options,
            self._concurrency,
            on_new_instance=self._hurry_others,
        )
        self._processors[partition_id] = processor
        processor.start()

    async def _lost(self, partition_id: str) -> None:  # another worker may be processing it already
        await self._stop_partition(partition_id, drain_timeout=1.0)

    async def _drain(self, partition_id: str) -> None:  # the lease is ours until this returns
        await self._stop_partition(partition_id, drain_timeout=self._drain_seconds)

    async def stop_async(self) -> None:
        """Stop gracefully: drain and release every partition, so other workers take them over
        at once; meanwhile take no new work items and let running activities finish (at most
        ``activity_drain_timeout_seconds``), handing the ones not started back."""
        async with self._switch:
            activities = (
                asyncio.create_task(
                    self._activities.stop(drain_timeout=self.options.activity_drain_timeout_seconds)
                )
                if self._activities is not None
                else None
            )  # at once: a work item started now would only delay the stop
            if self._nearby is not None:
                self._nearby.close()
            if self._balancer is not None:
                await self._balancer.stop()
        await asyncio.gather(*(p.stop() for p in self._processors.values()))  # none left normally
        self._processors.clear()
        if activities is not None:
            await activities
        if self._orchestrations is not None:
            self._orchestrations.close()
        self.code.close()
        if self._hub is not None:
            await self._hub.close()
        _LOG.info("worker %s stopped", self.worker_id)

    async def __aenter__(self) -> Worker:
        await self.start_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_async()

    async def _stop_partition(self, partition_id: str, *, drain_timeout: float) -> None:
        """Stop dequeuing from a partition, let its episodes finish within ``drain_timeout``,
        hand its held messages back and forget its cached instances."""
        processor = self._processors.get(partition_id)
        if processor is not None:
            await processor.stop(drain_timeout=drain_timeout)
            self._processors.pop(partition_id, None)
        self._forget(partition_id)

    def _forget(self, partition_id: str) -> None:
        """Drop the partition's cached instances: another worker may commit them meanwhile."""
        if self._orchestrations is not None:
            index = int(partition_id.rsplit("-", 1)[1])
            count = self.settings.partition_count
            self._orchestrations.forget(lambda iid: partition_index(iid, count) == index)

    def _hurry_others(self, partition_id: str) -> None:
        """A new instance arrived on ``partition_id``: more may follow on the others."""
        for other, processor in self._processors.items():
            if other != partition_id:
                processor.hurry()

    def _woken(self, loop: asyncio.AbstractEventLoop, instance_id: str) -> None:
        """A client of this process sent to ``instance_id`` (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: this worker is gone
            loop.call_soon_threadsafe(self._wake_partition_of, instance_id)

    def _wake_partition_of(self, instance_id: str) -> None:
        processor = self._processor_of(instance_id)
        if processor is not None:
            processor.wake()

    def _processor_of(self, instance_id: str) -> ControlQueueProcessor | None:
        """The processor of ``instance_id``'s partition if this worker owns it."""
        index = partition_index(instance_id, self.settings.partition_count)
        return self._processors.get(self.settings.names.control_queue(index))

    @property
    def owned_partitions(self) -> list[str]:
        return sorted(self._processors)

    @property
    def activities_executed(self) -> int:
        return self._activities_before + (self._activities.executed if self._activities else 0)

    @property
    def activities_unfinished(self) -> int:
        """Activities a stop left running (user code that did not return in time)."""
        return self._activities.unfinished if self._activities else 0

    @property
    def messages_handed_over(self) -> int:
        """Messages this worker sent already held to its own consumers (no receive needed)."""
        return self._delivery.handed_over if self._delivery else 0

    @property
    def partition_moves(self) -> MoveCounts:
        """Partitions handed over, received, stolen and lost by this worker so far."""
        return self._balancer.moves if self._balancer else MoveCounts()

    @property
    def episodes_run(self) -> int:
        return self._orchestrations.episodes_run if self._orchestrations else 0

    # ------------------------------------------------------------------------ sync API

    def start(self) -> Worker:
        """Start on a background thread with its own event loop."""
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"durablehub-worker-{self.worker_id}", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result()
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop_async(), self._loop).result()
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
