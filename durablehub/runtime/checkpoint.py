"""Checkpoint: the one way the runtime records a step of an instance.

Orchestration episodes, entity batches, rewinds and Instances-row repairs all end here, in the
reference's order (taskhub-layout.md §6.2): send the outbound messages, write history under the
sentinel ETag, merge the Instances row. The caller deletes the consumed messages last (the
partition's settle step), so a crash anywhere in between redelivers them and the step runs
again: a message sent twice is dropped by its consumer, history written twice is refused by the
sentinel, and a row left behind its history is repaired.

What produced the step -- a replayed orchestrator here, an entity batch, or (for the sidecar)
a remote SDK worker's answer -- is the caller's business: a ``Checkpoint`` is only what to write.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from durablehub.engine import history as ev
from durablehub.engine.episode import OutboundMessage
from durablehub.runtime.delivery import Delivery, Handovers
from durablehub.runtime.gather import bounded_gather
from durablehub.runtime.retries import retry_transient
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.records import InstanceUpdate

_SEND_CONCURRENCY = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """What one step of an instance writes, in the order it is written.

    ``messages`` go out as sent by ``sender`` in ``episode`` (the envelope's Episode). ``history``
    is appended from ``first_sequence_number`` under ``sentinel_etag`` (``replaced`` rewrites
    earlier rows; ``uncommitted_row_keys`` are rows a torn checkpoint left). ``row`` is merged
    into the Instances row. Each part may be empty: a repair is a row alone.
    """

    instance_id: str
    execution_id: str
    sender: ev.OrchestrationInstance | None = None
    episode: int = 0
    messages: Sequence[OutboundMessage] = ()
    history: Sequence[ev.HistoryEvent] = ()
    first_sequence_number: int = 0
    sentinel_etag: str | None = None
    replaced: Mapping[int, ev.HistoryEvent] | None = None
    uncommitted_row_keys: Sequence[str] = ()
    row: InstanceUpdate | None = None


class Checkpointer:
    def __init__(self, hub: AsyncTaskHub, delivery: Delivery) -> None:
        self._hub = hub
        self._delivery = delivery

    async def commit(self, checkpoint: Checkpoint, *, later: Handovers | None = None) -> str | None:
        """Write ``checkpoint``; return the sentinel's new ETag (unchanged without history).

        Messages for consumers in this process wait in ``later`` until the caller gives them
        (once the step is recorded: see ``Delivery``).

        Raises:
            CheckpointConflictError: another worker committed this instance meanwhile.
        """
        cp = checkpoint
        if cp.messages:
            assert cp.sender is not None, "messages need a sender"
            await self._send(cp.messages, cp.sender, cp.episode, later)
        etag = cp.sentinel_etag
        if cp.history:
            etag = await self._hub.history.commit(
                cp.instance_id,
                cp.execution_id,
                cp.history,
                first_sequence_number=cp.first_sequence_number,
                sentinel_etag=cp.sentinel_etag,
                replaced=cp.replaced,
                uncommitted_row_keys=cp.uncommitted_row_keys,
            )
        if cp.row is not None:
            row = cp.row
            await retry_transient(
                lambda: self._hub.instances.merge_update(row), what="writing the Instances row"
            )
        return etag

    async def _send(
        self,
        messages: Sequence[OutboundMessage],
        sender: ev.OrchestrationInstance,
        episode: int,
        later: Handovers | None,
    ) -> None:
        now = datetime.now(UTC)

        async def send_one(sequence: int, om: OutboundMessage) -> None:
            message = envelope.MessageData(
                task_message=envelope.TaskMessage(
                    event=om.event,
                    orchestration_instance=ev.OrchestrationInstance(
                        instance_id=om.target_instance_id, execution_id=om.target_execution_id
                    ),
                ),
                # The order of the step's messages: they are sent concurrently, and a receiver
                # that must keep it (carried-over events) cannot rely on their arrival.
                sequence_number=sequence,
                episode=episode,
                sender=sender,
            )
            if om.to_work_items:
                await self._delivery.to_activities(message, later=later)
                return
            delay = om.visible_at - now if om.visible_at is not None and om.visible_at > now else None
            await self._delivery.to_instance(om.target_instance_id, message, visible_after=delay, later=later)

        # Each send is retried on its own: a fan-out would rarely get all through otherwise.
        # A message sent twice (its answer lost) is dropped as a duplicate by its consumer.
        await bounded_gather(
            [
                retry_transient(functools.partial(send_one, i, om), what="sending a message")
                for i, om in enumerate(messages)
            ],
            limit=_SEND_CONCURRENCY,
        )
