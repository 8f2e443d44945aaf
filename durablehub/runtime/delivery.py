"""Delivery: how the runtime sends control and work-item messages.

Every message still goes through its queue, one message per task (the wire format is the
reference's). But when this process consumes the target itself -- it owns the instance's
partition, or its activity runner has a free slot -- the message is enqueued already
invisible (held for one visibility timeout) and handed over in memory with its receipt: the
consumer skips a receive request and a poll interval, and if this process dies the message
becomes visible to the next owner when the hold ends, like any message it had received.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.outage import outage_of
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue, ReceivedMessage


class LocalConsumer(Protocol):
    def take(self, message: ReceivedMessage) -> bool:
        """Accept a held message; False if no longer consuming (it is then made visible)."""
        ...


class ActivityConsumer(LocalConsumer, Protocol):
    def reserve_slot(self) -> bool: ...

    def release_slot(self) -> None: ...

    def wake(self) -> None: ...


class Delivery:
    def __init__(
        self,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        partition_of: Callable[[str], LocalConsumer | None] = lambda _iid: None,
    ) -> None:
        self._hub = hub
        self._options = options
        self._partition_of = partition_of
        self.activities: ActivityConsumer | None = None
        self.handed_over = 0  # messages consumed without a receive (for tests and the benchmark)

    async def to_instance(
        self, instance_id: str, message: envelope.MessageData, *, visible_after: timedelta | None = None
    ) -> None:
        """Send to the instance's control queue; a timer (``visible_after``) is never held."""
        queue = self._hub.control_queue_for(instance_id)
        consumer = self._partition_of(instance_id) if visible_after is None else None
        if consumer is None:
            await queue.send(message, visible_after=visible_after)
            return
        await self._hand_over(queue, message, self._options.control_visibility, consumer)

    async def to_activities(self, message: envelope.MessageData) -> None:
        runner = self.activities
        if runner is None or not runner.reserve_slot():  # busy: leave it to any worker
            await self._hub.work_items.send(message)
            if runner is not None:
                runner.wake()
            return
        try:
            await self._hand_over(self._hub.work_items, message, self._options.activity_visibility, runner)
        finally:
            runner.release_slot()

    async def _hand_over(
        self,
        queue: AsyncTaskHubQueue,
        message: envelope.MessageData,
        hold: timedelta,
        consumer: LocalConsumer,
    ) -> None:
        held = await queue.send_held(message, hold=hold)
        if consumer.take(held):
            self.handed_over += 1
            return
        # The consumer stopped while we sent (partition handed over, worker stopping).
        try:
            await queue.update_visibility(held, timedelta(0))
        except Exception as exc:
            what = f"message {held.message_id} in {queue.name} stays hidden until its hold ends"
            outage_of(self._hub).failed(what, exc)
