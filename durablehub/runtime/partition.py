"""ControlQueueProcessor: the work of one owned partition (one control queue).

It dequeues batches, groups messages by instance into sessions (one episode at a time per
instance, many instances at once), keeps every held message invisible by renewing it while
it waits or runs -- so a worker that dies hands its messages over within one short
visibility timeout, not DurableTask.AzureStorage's fixed 5 minutes -- and deletes or hands
back each message when its episode is committed. Unreadable messages go to the poison queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.orchestrations import OrchestrationRunner
from durablehub.runtime.polling import IdlePoller
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue, ReceivedMessage

_LOG = logging.getLogger("durablehub.worker")
_BUFFER_LIMIT = 256  # held messages above which the processor stops dequeuing


class ControlQueueProcessor:
    def __init__(
        self,
        partition_id: str,
        queue: AsyncTaskHubQueue,
        hub: AsyncTaskHub,
        runner: OrchestrationRunner,
        options: WorkerOptions,
        concurrency: asyncio.Semaphore,
    ) -> None:
        self.partition_id = partition_id
        self._queue = queue
        self._hub = hub
        self._runner = runner
        self._options = options
        self._concurrency = concurrency
        self._held: dict[str, ReceivedMessage] = {}  # message id → latest receipt
        self._pending: dict[str, dict[str, ReceivedMessage]] = {}  # instance → messages not yet run
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self._receipts = asyncio.Lock()  # renewals and deletes must not race on a pop receipt
        self._poller = IdlePoller(options.min_poll_interval_seconds, options.max_poll_interval_seconds)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._dequeue_loop(), name=f"dequeue {self.partition_id}"),
            asyncio.create_task(self._renew_loop(), name=f"renew {self.partition_id}"),
        ]

    def wake(self) -> None:
        self._poller.wake()

    async def stop(self, *, drain_timeout: float = 30.0) -> None:
        """Stop dequeuing, let running episodes finish, hand the rest back at once."""
        self._stopping = True
        self._poller.wake()
        sessions = list(self._sessions.values())
        if sessions:
            await asyncio.wait(sessions, timeout=drain_timeout)
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *self._sessions.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self._receipts:
            for message in list(self._held.values()):  # visible again now, for the next owner
                with contextlib.suppress(Exception):
                    await self._queue.update_visibility(message, timedelta(0))
            self._held.clear()

    async def _dequeue_loop(self) -> None:
        while not self._stopping:
            if len(self._held) >= _BUFFER_LIMIT:
                await asyncio.sleep(0.05)
                continue
            try:
                batch = await self._queue.receive(
                    max_messages=self._options.control_queue_batch_size,
                    visibility_timeout=self._options.control_visibility,
                )
            except Exception:
                _LOG.exception("receiving from %s failed; backing off", self.partition_id)
                batch = []
                self._poller.back_off()
            if not batch:
                await self._poller.idle()
                continue
            self._poller.reset()
            for message in batch:
                await self._accept(message)

    async def _accept(self, message: ReceivedMessage) -> None:
        if message.error is not None or message.message is None or message.message.task_message is None:
            await self._hub.quarantine(self._queue, message, reason=str(message.error or "no TaskMessage"))
            return
        self._held[message.message_id] = message
        instance_id = message.message.instance_id
        self._pending.setdefault(instance_id, {})[message.message_id] = message
        if instance_id not in self._sessions:
            self._sessions[instance_id] = asyncio.create_task(
                self._session(instance_id), name=f"session {instance_id}"
            )

    async def _session(self, instance_id: str) -> None:
        try:
            while not self._stopping and self._pending.get(instance_id):
                batch = list(self._pending.pop(instance_id).values())
                async with self._concurrency:
                    try:
                        outcome = await self._runner.process(instance_id, batch)
                    except Exception:
                        _LOG.exception("episode of %r failed; its messages will be retried", instance_id)
                        await self._release(
                            [m.message_id for m in batch], delay=self._options.abandon_delay_seconds
                        )
                        continue
                await self._finish(outcome.delete)
                await self._release(outcome.abandon, delay=self._options.abandon_delay_seconds)
        finally:
            self._sessions.pop(instance_id, None)
            if self._pending.get(instance_id) and not self._stopping:  # arrived while we were finishing
                self._sessions[instance_id] = asyncio.create_task(self._session(instance_id))

    async def _finish(self, message_ids: list[str]) -> None:
        async with self._receipts:
            await asyncio.gather(*(self._delete(mid) for mid in message_ids))

    async def _delete(self, message_id: str) -> None:
        message = self._held.pop(message_id, None)
        if message is not None:
            await self._queue.delete_message(message)

    async def _release(self, message_ids: list[str], *, delay: int) -> None:
        """Hand messages back (visible again after ``delay`` s): early responses, failed episodes."""
        async with self._receipts:
            for message_id in message_ids:
                message = self._held.pop(message_id, None)
                if message is not None:
                    with contextlib.suppress(Exception):
                        await self._queue.update_visibility(message, timedelta(seconds=delay))

    async def _renew_loop(self) -> None:
        interval = self._options.control_visibility_seconds / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            async with self._receipts:
                for message_id, message in list(self._held.items()):
                    try:
                        self._held[message_id] = await self._queue.update_visibility(
                            message, self._options.control_visibility
                        )
                    except Exception:  # gone or taken over: the episode's delete will tell
                        _LOG.debug("could not renew message %s", message_id, exc_info=True)
                for pending in self._pending.values():
                    for message_id in list(pending):
                        if message_id in self._held:
                            pending[message_id] = self._held[message_id]
