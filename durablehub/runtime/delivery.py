"""Delivery: how the runtime sends control and work-item messages.

Every message still goes through its queue, one message per task (the wire format is the
reference's). But when this process consumes the target itself -- it owns the instance's
partition, or its activity runner has room (``reserve_slot``) -- the message is enqueued already
invisible (held for one visibility timeout) and handed over in memory with its receipt: the
consumer skips a receive request and a poll interval, and if this process dies the message
becomes visible to the next owner when the hold ends, like any message it had received.

An episode's messages are sent before its history is written (the reference's order), but
the ones held for this process are given to their consumers only after that write
(``Handovers``): an activity does not start, nor a child or self-addressed message run, for
an episode that is not committed yet -- so a crash inside that activity cannot take the
uncommitted episode with it, and their responses cannot arrive early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class _Held:
    queue: AsyncTaskHubQueue
    message: ReceivedMessage
    consumer: LocalConsumer
    slot: ActivityConsumer | None  # a reserved activity slot, released once handed over


@dataclass(slots=True)
class Handovers:
    """Messages an episode sent held for consumers in this process, given to them by
    ``give`` once the episode is recorded."""

    delivery: Delivery
    held: list[_Held] = field(default_factory=list)

    async def give(self) -> None:
        """Give the held messages to their consumers (also after a failed commit: they were
        sent either way, and are due like any sent message)."""
        held, self.held = self.held, []
        for h in held:
            await self.delivery.give(h)


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
        self,
        instance_id: str,
        message: envelope.MessageData,
        *,
        visible_after: timedelta | None = None,
        later: Handovers | None = None,
    ) -> None:
        """Send to the instance's control queue; a timer (``visible_after``) is never held.
        With ``later``, a held message waits there for ``Handovers.give`` instead of going at once."""
        queue = self._hub.control_queue_for(instance_id)
        consumer = self._partition_of(instance_id) if visible_after is None else None
        if consumer is None:
            await queue.send(message, visible_after=visible_after)
            return
        held = _Held(
            queue, await queue.send_held(message, hold=self._options.control_visibility), consumer, None
        )
        await self._give_or_keep(held, later)

    async def to_activities(self, message: envelope.MessageData, *, later: Handovers | None = None) -> None:
        runner = self.activities
        if runner is None or not runner.reserve_slot():  # busy: leave it to any worker
            await self._hub.work_items.send(message)
            if runner is not None:
                runner.wake()
            return
        try:
            sent = await self._hub.work_items.send_held(message, hold=self._options.activity_visibility)
        except BaseException:
            runner.release_slot()
            raise
        await self._give_or_keep(_Held(self._hub.work_items, sent, runner, runner), later)

    async def _give_or_keep(self, held: _Held, later: Handovers | None) -> None:
        if later is None:
            await self.give(held)
        else:
            later.held.append(held)

    def later(self) -> Handovers:
        """A place for an episode's held messages until it is recorded (``to_*(later=...)``)."""
        return Handovers(self)

    async def give(self, held: _Held) -> None:
        try:
            if held.consumer.take(held.message):
                self.handed_over += 1
                return
        finally:
            if held.slot is not None:
                held.slot.release_slot()
        # The consumer stopped meanwhile (partition handed over, worker stopping).
        try:
            await held.queue.update_visibility(held.message, timedelta(0))
        except Exception as exc:
            what = f"message {held.message.message_id} in {held.queue.name} stays hidden until its hold ends"
            outage_of(self._hub).failed(what, exc)
