"""ActivityRunner: runs activities from ``{hub}-workitems`` on any worker.

Holds up to twice ``max_concurrent_activities`` work items: it receives (up to 32 in one
request) only once no more than ``max_concurrent_activities`` are held, so each receive
brings a full batch while the running ones keep every slot busy. Work items scheduled by
this process arrive already held (``take``), without a receive, up to the same bound: the
running ones and as many waiting for a slot.
Each activity runs where user code runs (``durablehub.runtime.hosting``: in this process
under ``activity_timeout_seconds``, or in a connected SDK worker) while its message's
visibility is renewed (from the moment it is held), then TaskCompleted or TaskFailed goes
to the orchestration's control queue *before* the work item is deleted (a crash in between
gives a duplicate response, which the orchestration drops). Activities are therefore
at-least-once. A work item that cannot be read goes to the poison queue at once;
one dequeued more than ``max_dequeue_count`` times fails its task and goes there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from durablehub.engine import history as ev
from durablehub.errors import PoisonMessageError
from durablehub.models import FailureDetails
from durablehub.runtime.hosting import InProcessCode, UserCode
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.outage import outage_of
from durablehub.runtime.polling import IdlePoller
from durablehub.runtime.resend import due_for_fresh_copy, send_fresh_copy
from durablehub.runtime.retries import abandon_delay, retry_transient
from durablehub.runtime.supervision import report_failure, supervise
from durablehub.taskhub import envelope, quarantine
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage
from durablehub.telemetry.metrics import ACTIVITIES_ACTIVE
from durablehub.telemetry.tracking import Tracker

_LOG = logging.getLogger("durablehub.worker")


class ActivityRunner:
    def __init__(
        self,
        code: UserCode,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        report: Callable[[str, envelope.MessageData], Awaitable[None]] | None = None,
    ) -> None:
        self._code = code
        self._hub = hub
        self._options = options
        self._report = report or self._send_response
        self._capacity = options.max_concurrent_activities
        self._slots = asyncio.Semaphore(self._capacity)
        self._stopping = False
        self._held: set[asyncio.Task[None]] = set()  # work items held: waiting for a slot or running
        self._reserved = 0  # slots promised to work items being sent to us already held
        self._reporting = 0  # held work items whose code has run: their answers are on the way
        self._room = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._poller = IdlePoller.of_worker(options)
        self.executed = 0
        self.rejected = 0  # hand-backs of work items whose activity this worker lacks (REJECT)
        self.tracker = Tracker(hub.settings.task_hub)
        self.unfinished = 0  # activities still running when a stop gave up waiting for them

    def start(self) -> None:
        self._loop_task = supervise(self._dequeue_loop, name="dequeuing work items")

    def wake(self) -> None:
        self._poller.wake()

    def reserve_slot(self) -> bool:
        """Promise room to a work item about to be handed over (``take``), so that concurrent
        senders do not all count the same room; undo with ``release_slot``. The room is what a
        receive keeps (twice the slots): past it, the next worker with a free slot should take it."""
        if self._stopping or len(self._held) - self._reporting + self._reserved >= 2 * self._capacity:
            return False
        self._reserved += 1
        return True

    def release_slot(self) -> None:
        self._reserved -= 1

    def take(self, item: ReceivedMessage) -> bool:
        """Run a work item this process sent already held; False once stopping."""
        if self._stopping:
            return False
        self._hold(item)
        return True

    async def stop(self, *, drain_timeout: float = 30.0) -> None:
        self._stopping = True
        self._poller.wake()
        self._room.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._held:
            await asyncio.wait(self._held, timeout=drain_timeout)
        self.unfinished = len(self._held)
        if self.unfinished:  # their work items come back when their visibility timeout ends
            _LOG.warning(
                "%d activities still running after %g s; leaving them to run again elsewhere",
                self.unfinished,
                drain_timeout,
            )

    async def _dequeue_loop(self) -> None:
        while not self._stopping:
            if len(self._held) > self._capacity:  # a full batch would wait: receive later
                self._room.clear()
                await self._room.wait()
                continue
            asked = min(2 * self._capacity - len(self._held), 32)
            batch = await self._poller.poll(
                functools.partial(
                    self._hub.work_items.receive,
                    max_messages=asked,
                    visibility_timeout=self._options.activity_visibility,
                    # One dequeue over the limit still reads a work item, to tell its instance
                    # which task failed (_poison); after that its blob is never downloaded again.
                    max_dequeue_count=self._options.max_dequeue_count + 1,
                ),
                outage=outage_of(self._hub),
                what="receiving work items",
                full=asked,
            )
            for item in batch:
                self._hold(item)

    def _hold(self, item: ReceivedMessage) -> None:
        task = asyncio.create_task(self._execute(item), name=f"work item {item.message_id}")
        self._held.add(task)
        task.add_done_callback(self._done)
        task.add_done_callback(report_failure)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._held.discard(task)
        if len(self._held) <= self._capacity:
            self._room.set()

    async def _execute(self, item: ReceivedMessage) -> None:
        if item.error is not None or item.message is None:
            await self._hub.quarantine(self._hub.work_items, item, reason=f"unreadable: {item.error}")
            return
        problem = quarantine.problem_on_work_items(item.message)
        if problem is not None:
            await self._hub.quarantine(self._hub.work_items, item, reason=f"foreign message: {problem}")
            return
        if item.dequeue_count > self._options.max_dequeue_count:
            await self._poison(item)
            return
        scheduled = item.message.event
        assert isinstance(scheduled, ev.TaskScheduled)  # checked by problem_on_work_items
        target = item.message.task_message.orchestration_instance  # type: ignore[union-attr]
        if isinstance(self._code, InProcessCode) and self._code.rejects_activity(scheduled.name):
            # No code for it here (runtime/unknown.py, REJECT): back to the queue for another worker.
            self.rejected += 1
            await self._hand_back_rejected(item)
            return
        holder = {"item": item}
        renewer = asyncio.create_task(self._keep_invisible(holder))
        try:
            async with self._slots:
                if self._stopping:  # not started: hand it back at once for another worker
                    with contextlib.suppress(Exception):
                        await self._hub.work_items.update_visibility(holder["item"], timedelta(0))
                    return
                self.tracker.activity_starting(scheduled, target)
                began = time.monotonic()
                ACTIVITIES_ACTIVE.add(1)
                try:
                    response = await self._code.run_activity(scheduled, target)
                except Exception as exc:  # not run (its worker went away): soon another may run it
                    outage_of(self._hub).failed(f"activity {scheduled.name!r} was not run", exc)
                    with contextlib.suppress(Exception):
                        await self._hub.work_items.update_visibility(holder["item"], timedelta(seconds=1))
                    return
                finally:
                    ACTIVITIES_ACTIVE.add(-1)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        self._reporting += 1  # the code has run: its slot is free for the next handover
        try:
            await self._answer(holder, scheduled, target, response, time.monotonic() - began)
        finally:
            self._reporting -= 1

    async def _hand_back_rejected(self, item: ReceivedMessage) -> None:
        """Hand back a work item this worker has no code for; past half the poison limit as a
        fresh copy (``runtime/resend.py``), so that it waits for a worker with the code however
        long that takes instead of failing its task as a poison message."""
        delay = abandon_delay(self._options.abandon_delay_seconds, item.dequeue_count)
        queue = self._hub.work_items
        if due_for_fresh_copy(item, self._options.max_dequeue_count) and await send_fresh_copy(
            self._hub, queue, item, delay=delay
        ):
            try:
                await retry_transient(lambda: queue.delete_message(item), what="deleting a work item")
            except Exception as exc:  # the copy is then a duplicate: its instance drops the answer
                outage_of(self._hub).failed(f"could not delete work item {item.message_id}", exc)
            return
        with contextlib.suppress(Exception):  # else it is visible again when its hold ends
            await queue.update_visibility(item, timedelta(seconds=delay))

    async def _answer(
        self,
        holder: dict[str, ReceivedMessage],
        scheduled: ev.TaskScheduled,
        target: ev.OrchestrationInstance,
        response: ev.HistoryEvent,
        seconds: float,
    ) -> None:
        """Report the activity's result to its orchestration, then delete its work item."""
        item = holder["item"]
        assert item.message is not None
        self.tracker.activity_finished(scheduled, target, response, seconds)
        message = envelope.MessageData(
            task_message=envelope.TaskMessage(event=response, orchestration_instance=target),
            episode=item.message.episode if item.message.episode is not None else -1,
            sender=target,
        )
        try:  # a response sent twice (a lost answer, retried) is dropped as a duplicate
            await retry_transient(lambda: self._report(target.instance_id, message), what="reporting")
        except Exception as exc:
            what = f"could not report activity {scheduled.name!r} of {target.instance_id!r}; it runs again"
            outage_of(self._hub).failed(what, exc)
            with contextlib.suppress(Exception):  # at once, rather than when its hold ends
                await self._hub.work_items.update_visibility(holder["item"], timedelta(seconds=1))
            return
        self.executed += 1
        try:
            await retry_transient(
                lambda: self._hub.work_items.delete_message(holder["item"]), what="deleting a work item"
            )
        except Exception as exc:  # it runs again when its hold ends; the orchestration drops the duplicate
            outage_of(self._hub).failed(f"could not delete work item {holder['item'].message_id}", exc)

    async def _poison(self, item: ReceivedMessage) -> None:
        """A work item dequeued too often without completing: its activity crashes the worker
        (or cannot report) every time. The orchestration is told, with a TaskFailed naming the
        reason -- so the instance fails visibly unless its code handles the failure -- and then
        the work item moves to the poison queue, kept for inspection. Told first: a crash in
        between redelivers the item, and the second TaskFailed is dropped as a duplicate."""
        assert item.message is not None and item.message.task_message is not None
        scheduled = item.message.event
        assert isinstance(scheduled, ev.TaskScheduled)
        target = item.message.task_message.orchestration_instance
        limit = self._options.max_dequeue_count
        error = PoisonMessageError(
            f"activity {scheduled.name!r} (task {scheduled.event_id}) of instance {target.instance_id!r} "
            f"was dequeued {item.dequeue_count} times without completing (max_dequeue_count={limit}): "
            f"each run crashed its worker or could not report; work item {item.message_id} was moved "
            f"to {self._hub.poison.name}"
        )
        # Not retried by a retry policy: each attempt would crash max_dequeue_count workers again.
        details = dataclasses.replace(FailureDetails.from_exception(error), is_non_retriable=True)
        failed = ev.TaskFailed(
            task_scheduled_id=scheduled.event_id, reason=str(error), details=None, failure_details=details
        )
        response = envelope.MessageData(
            task_message=envelope.TaskMessage(event=failed, orchestration_instance=target),
            episode=item.message.episode if item.message.episode is not None else -1,
            sender=target,
        )
        try:
            await self._report(target.instance_id, response)
        except Exception:
            _LOG.exception("could not report poisoned activity %r of %r", scheduled.name, target.instance_id)
            return  # it comes back when its visibility ends, and is tried again
        reason = f"dequeued {item.dequeue_count} times without completing (max_dequeue_count={limit})"
        await self._hub.quarantine(
            self._hub.work_items, item, reason=f"{reason}; the instance was sent a TaskFailed", reported=True
        )

    async def _send_response(self, instance_id: str, message: envelope.MessageData) -> None:
        await self._hub.control_queue_for(instance_id).send(message)

    async def _keep_invisible(self, holder: dict[str, ReceivedMessage]) -> None:
        interval = self._options.activity_visibility_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                holder["item"] = await self._hub.work_items.update_visibility(
                    holder["item"], timedelta(seconds=self._options.activity_visibility_seconds)
                )
            except Exception as exc:
                outage_of(self._hub).failed(f"could not renew work item {holder['item'].message_id}", exc)
