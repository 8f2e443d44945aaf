"""ActivityRunner: runs activities from ``{hub}-workitems`` on any worker.

Dequeues as many work items as it has free slots (one request for up to 32), runs each
activity -- ``async def`` ones on the loop, plain ones in a thread pool -- while renewing the
message's visibility, then sends TaskCompleted or TaskFailed to the orchestration's control
queue *before* deleting the work item (a crash in between gives a duplicate response, which
the orchestration drops). Activities are therefore at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC
from durablehub.models import FailureDetails
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.polling import IdlePoller
from durablehub.task import ActivityContext
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage

_LOG = logging.getLogger("durablehub.worker")


class ActivityRunner:
    def __init__(
        self,
        app: App,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        wake: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._app = app
        self._hub = hub
        self._options = options
        self._wake = wake
        self._free = options.max_concurrent_activities
        self._pool = ThreadPoolExecutor(
            max_workers=options.max_concurrent_activities, thread_name_prefix="durablehub-activity"
        )
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._poller = IdlePoller(options.min_poll_interval_seconds, options.max_poll_interval_seconds)
        self.executed = 0

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._dequeue_loop(), name="activities")

    def wake(self) -> None:
        self._poller.wake()

    async def stop(self, *, drain_timeout: float = 30.0) -> None:
        self._stopping = True
        self._poller.wake()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._running:
            await asyncio.wait(self._running, timeout=drain_timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _dequeue_loop(self) -> None:
        while not self._stopping:
            if self._free <= 0:
                await asyncio.sleep(0.01)
                continue
            try:
                batch = await self._hub.work_items.receive(
                    max_messages=min(self._free, 32), visibility_timeout=self._options.activity_visibility
                )
            except Exception:
                _LOG.exception("receiving work items failed; backing off")
                batch = []
                self._poller.back_off()
            if not batch:
                await self._poller.idle()
                continue
            self._poller.reset()
            for item in batch:
                self._free -= 1
                task = asyncio.create_task(self._execute(item))
                self._running.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._free += 1

    async def _execute(self, item: ReceivedMessage) -> None:
        if item.message is None or not isinstance(item.message.event, ev.TaskScheduled):
            _LOG.error(
                "moving unreadable work item %s to %s: %s",
                item.message_id,
                self._hub.poison.name,
                item.error or "not a TaskScheduled message",
            )
            with contextlib.suppress(Exception):
                await self._hub.poison.create()
                await self._hub.poison.send_raw(item.body)
                await self._hub.work_items.delete_message(item)
            return
        scheduled = item.message.event
        target = item.message.task_message.orchestration_instance  # type: ignore[union-attr]
        holder = {"item": item}
        renewer = asyncio.create_task(self._keep_invisible(holder))
        try:
            response = await self._run(scheduled, target)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        message = envelope.MessageData(
            task_message=envelope.TaskMessage(event=response, orchestration_instance=target),
            episode=item.message.episode if item.message.episode is not None else -1,
            sender=target,
        )
        try:
            await self._hub.control_queue_for(target.instance_id).send(message)
            self._wake(target.instance_id)
            await self._hub.work_items.delete_message(holder["item"])
            self.executed += 1
        except Exception:
            _LOG.exception(
                "could not report activity %r of %r; it will run again", scheduled.name, target.instance_id
            )

    async def _run(self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance) -> ev.HistoryEvent:
        ctx = ActivityContext(
            orchestration_id=target.instance_id, task_id=scheduled.event_id, task_name=scheduled.name
        )
        try:
            registered = self._app.get_activity(scheduled.name)
            what = f"input of activity {scheduled.name!r}"
            value = JSON_CODEC.decode(scheduled.input, what=what)
            if registered.is_async:
                result: Any = await registered.fn(ctx, value)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._pool, registered.fn, ctx, value)
            encoded = JSON_CODEC.encode(result, what=f"result of activity {scheduled.name!r}")
        except Exception as exc:  # the orchestration decides what a failure means
            details = FailureDetails.from_exception(exc)
            return ev.TaskFailed(
                task_scheduled_id=scheduled.event_id,
                reason=str(exc),
                details=details.stack_trace,
                failure_details=details,
            )
        return ev.TaskCompleted(task_scheduled_id=scheduled.event_id, result=encoded)

    async def _keep_invisible(self, holder: dict[str, ReceivedMessage]) -> None:
        interval = self._options.activity_visibility_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                holder["item"] = await self._hub.work_items.update_visibility(
                    holder["item"], timedelta(seconds=self._options.activity_visibility_seconds)
                )
            except Exception:
                _LOG.warning("could not renew work item %s", holder["item"].message_id, exc_info=True)
