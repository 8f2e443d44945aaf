"""ControlQueueProcessor: the work of one owned partition (one control queue).

It dequeues batches, groups messages by instance into sessions (one episode at a time per
instance, many instances at once), keeps every held message invisible by renewing it while
it waits or runs -- so a worker that dies hands its messages over within one short
visibility timeout, not DurableTask.AzureStorage's fixed 5 minutes -- and deletes or hands
back each message when its episode is committed. Unreadable and foreign messages go to the
poison queue at once, and so does a message dequeued ``max_dequeue_count`` times without being
completed (its episode keeps crashing the worker or failing); its instance is left as it is,
waiting for it: ``durablehub poison requeue`` resumes it once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from durablehub.engine import history as ev
from durablehub.runtime.gather import bounded_gather
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.orchestrations import EpisodeOutcome, OrchestrationRunner
from durablehub.runtime.outage import outage_of
from durablehub.runtime.polling import IdlePoller
from durablehub.runtime.resend import due_for_fresh_copy, send_fresh_copy
from durablehub.runtime.retries import abandon_delay, retry_transient
from durablehub.runtime.supervision import report_failure, supervise
from durablehub.taskhub import quarantine
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue, ReceivedMessage

_LOG = logging.getLogger("durablehub.worker")
_BUFFER_LIMIT = 256  # held messages above which the processor stops dequeuing
_STORAGE_CONCURRENCY = 32  # requests at once for deletes, renewals and hand-backs


class ControlQueueProcessor:
    def __init__(
        self,
        partition_id: str,
        queue: AsyncTaskHubQueue,
        hub: AsyncTaskHub,
        runner: OrchestrationRunner,
        options: WorkerOptions,
        concurrency: asyncio.Semaphore,
        *,
        on_new_instance: Callable[[str], None] | None = None,
    ) -> None:
        self.partition_id = partition_id
        self._on_new_instance = on_new_instance  # a batch brought a start (see IdlePoller.hurry)
        self._queue = queue
        self._hub = hub
        self._runner = runner
        self._options = options
        self._concurrency = concurrency
        self._held: dict[str, ReceivedMessage] = {}  # message id → latest receipt
        self._held_since: dict[str, float] = {}  # message id → when it was received or renewed
        # message id → dequeues that ended in a deliberate hand-back (an early response, the
        # next generation's start): not failures, so not counted towards the poison threshold.
        self._handed_back: dict[str, int] = {}
        self._pending: dict[str, dict[str, ReceivedMessage]] = {}  # instance → messages not yet run
        self._sessions: dict[str, asyncio.Task[None]] = {}
        self._settling: set[asyncio.Task[None]] = set()  # deletes of committed episodes' messages
        self._receipts = asyncio.Lock()  # renewals and deletes must not race on a pop receipt
        self._poller = IdlePoller.of_worker(options)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            supervise(self._dequeue_loop, name=f"dequeuing from {self.partition_id}"),
            supervise(self._renew_loop, name=f"renewing messages of {self.partition_id}"),
        ]

    def wake(self) -> None:
        self._poller.wake()

    def hurry(self) -> None:
        self._poller.hurry()

    async def stop(self, *, drain_timeout: float = 30.0) -> None:
        """Stop dequeuing, let running episodes finish within ``drain_timeout``, cancel the
        rest (as a crash would end them: their messages come back), hand everything back."""
        self._stopping = True
        self._poller.wake()
        sessions = list(self._sessions.values())
        if sessions:
            await asyncio.wait(sessions, timeout=drain_timeout)
        for task in [*self._tasks, *self._sessions.values()]:
            task.cancel()
        for task in [*self._tasks, *self._sessions.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._settling:
            await asyncio.wait(list(self._settling))
        async with self._receipts:  # visible again now, for the next owner
            await bounded_gather(
                [self._hand_back(mid, timedelta(0)) for mid in list(self._held)], limit=_STORAGE_CONCURRENCY
            )

    async def _dequeue_loop(self) -> None:
        while not self._stopping:
            if len(self._held) >= _BUFFER_LIMIT:
                await asyncio.sleep(0.05)
                continue
            batch = await self._poller.poll(
                lambda: self._queue.receive(
                    max_messages=self._options.control_queue_batch_size,
                    visibility_timeout=self._options.control_visibility,
                    # Past this a message is poisoned however often it was handed back on purpose
                    # (see _poison_reason): no need to download its blob first.
                    max_dequeue_count=self._options.max_dequeue_count
                    + self._options.max_early_message_dequeues,
                ),
                outage=outage_of(self._hub),
                what=f"receiving from {self.partition_id}",
                full=self._options.control_queue_batch_size,
            )
            if self._on_new_instance is not None and any(_starts_instance(m) for m in batch):
                self._on_new_instance(self.partition_id)
            for message in batch:
                await self._accept(message)

    def take(self, message: ReceivedMessage) -> bool:
        """A message this process sent already held (``Delivery``); False once stopping."""
        if self._stopping:
            return False
        self._hold(message)
        return True

    async def _accept(self, message: ReceivedMessage) -> None:
        reason = self._poison_reason(message)
        if reason is not None:
            self._handed_back.pop(message.message_id, None)
            await self._hub.quarantine(self._queue, message, reason=reason)
            return
        self._hold(message)

    def _poison_reason(self, message: ReceivedMessage) -> str | None:
        if message.error is not None or message.message is None:
            return f"unreadable: {message.error or 'no message'}"
        problem = quarantine.problem_on_control_queue(message.message)
        if problem is not None:
            return f"foreign message: {problem}"
        limit = self._options.max_dequeue_count
        failed = message.dequeue_count - self._handed_back.get(message.message_id, 0)
        if failed > limit:
            return (
                f"dequeued {failed} times without being completed (max_dequeue_count={limit}): "
                "its episode crashed the worker or failed each time; the instance waits for it"
            )
        return None

    def _hold(self, message: ReceivedMessage) -> None:
        assert message.message is not None
        self._held[message.message_id] = message
        self._held_since[message.message_id] = time.monotonic()
        instance_id = message.message.instance_id
        self._pending.setdefault(instance_id, {})[message.message_id] = message
        if instance_id not in self._sessions:
            self._start_session(instance_id)

    async def _session(self, instance_id: str) -> None:
        try:
            while not self._stopping and self._pending.get(instance_id):
                batch = list(self._pending.pop(instance_id).values())
                async with self._concurrency:
                    try:
                        outcome = await self._runner.process(instance_id, batch)
                    except Exception as exc:
                        what = f"episode of {instance_id!r} failed; its messages will be retried"
                        outage_of(self._hub).failed(what, exc)
                        redeliveries = max(m.dequeue_count for m in batch)
                        delay = abandon_delay(self._options.abandon_delay_seconds, redeliveries)
                        await self._release([m.message_id for m in batch], delay=delay)
                        continue
                self._settle(outcome)
        finally:
            self._sessions.pop(instance_id, None)
            if self._pending.get(instance_id) and not self._stopping:  # arrived while we were finishing
                self._start_session(instance_id)

    def _start_session(self, instance_id: str) -> None:
        task = asyncio.create_task(self._session(instance_id), name=f"episodes of {instance_id!r}")
        task.add_done_callback(report_failure)
        self._sessions[instance_id] = task

    def _settle(self, outcome: EpisodeOutcome) -> None:
        """Delete (and hand back) an episode's messages while the instance's next episode
        starts: they are committed already, so the delete is the only step off the path."""
        task = asyncio.create_task(self._settle_now(outcome), name=f"settling {self.partition_id}")
        task.add_done_callback(report_failure)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_now(self, outcome: EpisodeOutcome) -> None:
        try:
            await self._finish(outcome.delete)  # never raises: see _delete
            for message_id in outcome.abandon:
                self._handed_back[message_id] = self._handed_back.get(message_id, 0) + 1
            if outcome.rejected_delay is not None:
                await self._release_rejected(outcome.abandon, delay=outcome.rejected_delay)
                return
            await self._release(outcome.abandon, delay=self._options.abandon_delay_seconds)
        except Exception as exc:
            outage_of(self._hub).failed(f"could not settle messages of {self.partition_id}", exc)

    async def _finish(self, message_ids: list[str]) -> None:
        async with self._receipts:
            await bounded_gather([self._delete(mid) for mid in message_ids], limit=_STORAGE_CONCURRENCY)

    async def _delete(self, message_id: str) -> None:
        self._held_since.pop(message_id, None)
        self._handed_back.pop(message_id, None)
        message = self._held.pop(message_id, None)
        if message is None:
            return
        try:
            await retry_transient(lambda: self._queue.delete_message(message), what="deleting a message")
        except Exception as exc:  # left behind, it comes back and is dropped as a duplicate
            outage_of(self._hub).failed(
                f"could not delete message {message_id} from {self.partition_id}", exc
            )

    async def _release(self, message_ids: list[str], *, delay: int) -> None:
        """Hand messages back (visible again after ``delay`` s): early responses, failed episodes."""
        async with self._receipts:
            await bounded_gather(
                [self._hand_back(mid, timedelta(seconds=delay)) for mid in message_ids],
                limit=_STORAGE_CONCURRENCY,
            )

    async def _release_rejected(self, message_ids: list[str], *, delay: int) -> None:
        """Hand back the messages of an episode the versioning policy rejected. A rejection may
        last until the next deployment, and this process's count of deliberate hand-backs does
        not travel with a partition: past half the poison limit a message is sent again fresh
        (``runtime/resend.py``)."""
        again: list[str] = []
        for message_id in message_ids:
            message = self._held.get(message_id)
            if (
                message is None
                or not due_for_fresh_copy(message, self._options.max_dequeue_count)
                or not await send_fresh_copy(self._hub, self._queue, message, delay=delay)
            ):
                again.append(message_id)
                continue
            await self._finish([message_id])
        await self._release(again, delay=delay)

    async def _hand_back(self, message_id: str, delay: timedelta) -> None:
        self._held_since.pop(message_id, None)
        message = self._held.pop(message_id, None)
        if message is not None:
            with contextlib.suppress(Exception):  # else it is visible again when its hold ends
                await retry_transient(
                    lambda: self._queue.update_visibility(message, delay), what="handing a message back"
                )

    async def _renew_loop(self) -> None:
        # Only messages held for half their visibility are renewed: most are consumed sooner,
        # and a renewal is a request. Checking every quarter leaves at least a quarter to spare.
        visibility = self._options.control_visibility_seconds
        while not self._stopping:
            await asyncio.sleep(visibility / 4)
            async with self._receipts:
                now = time.monotonic()
                due = [mid for mid, since in self._held_since.items() if now - since >= visibility / 2]

                async def renew(message_id: str) -> None:
                    message = self._held.get(message_id)
                    if message is None:
                        return
                    try:
                        self._held[message_id] = await self._queue.update_visibility(
                            message, self._options.control_visibility
                        )
                        self._held_since[message_id] = time.monotonic()
                    except Exception:  # gone or taken over: the episode's delete will tell
                        _LOG.debug("could not renew message %s", message_id, exc_info=True)

                await bounded_gather([renew(mid) for mid in due], limit=_STORAGE_CONCURRENCY)
                for pending in self._pending.values():
                    for message_id in list(pending):
                        if message_id in self._held:
                            pending[message_id] = self._held[message_id]


def _starts_instance(message: ReceivedMessage) -> bool:
    data = message.message
    return data is not None and data.task_message is not None and isinstance(data.event, ev.ExecutionStarted)
