"""EntityRunner: one entity batch, from the messages a control queue delivered to its commit.

Entities are instances ``@name@key`` on the same control queues, History and Instances tables
as orchestrations (taskhub-layout.md §7.2), and a batch is committed in the same order as an
orchestration episode: send the outbound messages (responses, signals, lock grants,
orchestration starts), write history under the sentinel ETag, merge the Instances row; the
caller deletes the consumed messages last. History is the reference's: every batch starts a
new execution whose ExecutionStarted carries the scheduler state as input (written over the
previous execution's rows, so an entity's history stays three rows and the sentinel).

The scheduler state also remembers the ids of recent requests, so a message redelivered after
a crash between the history write and the delete, or sent twice by a sender that crashed, is
applied once. Running the batch itself is ``durablehub.entities.batch`` (pure).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.engine.episode import OutboundMessage, new_execution_id
from durablehub.entities.batch import run_entity_batch
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import SchedulerState
from durablehub.errors import CheckpointConflictError
from durablehub.runtime.retries import retry_transient
from durablehub.taskhub import rows
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage

__all__ = ["EntityRunner", "scheduler_state_of"]

_LOG = logging.getLogger("durablehub.worker")
_CACHE_SIZE = 1000

Send = Callable[[list[OutboundMessage], ev.ExecutionStarted, int], Awaitable[None]]


@dataclass(slots=True)
class _Entity:
    state: SchedulerState
    sentinel_etag: str | None
    stored: bool  # has history already (CreatedTime is written once)
    # Read from history, not written by this worker: its Instances row may be behind (a
    # failure between the History and Instances writes), checked when nothing else is written.
    loaded_execution_id: str | None = None


def scheduler_state_of(events: tuple[ev.HistoryEvent, ...] | list[ev.HistoryEvent]) -> SchedulerState:
    """The scheduler state an entity's current execution started with."""
    for event in events:
        if isinstance(event, ev.ExecutionStarted):
            return SchedulerState.from_json(event.input)
    return SchedulerState()


class EntityRunner:
    def __init__(self, app: App, hub: AsyncTaskHub, *, send: Send) -> None:
        self._app = app
        self._hub = hub
        self._send = send
        # Entities kept between batches; a stale one (the partition moved and came back) fails
        # its commit on the sentinel ETag, is dropped and reloaded.
        self._cache: OrderedDict[str, _Entity] = OrderedDict()
        self.batches_run = 0

    async def process(self, instance_id: str, messages: list[ReceivedMessage]) -> tuple[list[str], list[str]]:
        """Run and commit one batch; returns the message ids to delete and to hand back."""
        every = [m.message_id for m in messages]
        try:
            entity_id = EntityInstanceId.parse(instance_id)
        except ValueError as exc:
            _LOG.warning("discarding %d messages for %r: %s", len(messages), instance_id, exc)
            return every, []
        entity = self._cache.pop(instance_id, None)
        if entity is None:
            page = await retry_transient(lambda: self._hub.history.load(instance_id), what="loading history")
            entity = _Entity(
                scheduler_state_of(page.events),
                page.sentinel_etag,
                stored=bool(page.events),
                loaded_execution_id=page.execution_id,
            )
        events = [m.message.event for m in sorted(messages, key=_arrival_order) if m.message is not None]
        try:
            target: Any = self._app.get_entity(entity_id.entity).target
            missing = ""
        except LookupError as exc:
            target, missing = None, str(exc)
            _LOG.warning("%s: %s", instance_id, missing)
        now = datetime.now(UTC)
        result = await asyncio.to_thread(
            run_entity_batch, entity_id, target, entity.state, events, now=now, missing_reason=missing
        )
        new_state = result.state
        if not result.messages and new_state.to_json() == entity.state.to_json():
            if entity.loaded_execution_id is not None:
                await self._repair_row(instance_id, entity, entity.loaded_execution_id)
            self._keep(instance_id, entity)  # only duplicates: nothing to record
            return every, []
        execution_id = new_execution_id()
        started = ev.ExecutionStarted(
            timestamp=now,
            orchestration_instance=ev.OrchestrationInstance(
                instance_id=instance_id, execution_id=execution_id
            ),
            name=instance_id,
            input=new_state.to_json(),
        )
        written: list[ev.HistoryEvent] = [
            ev.OrchestratorStarted(timestamp=now),
            started,
            ev.OrchestratorCompleted(timestamp=now),
        ]
        try:
            await self._send(list(result.messages), started, 1)
            etag = await self._hub.history.commit(
                instance_id,
                execution_id,
                written,
                first_sequence_number=0,
                sentinel_etag=entity.sentinel_etag,
            )
        except CheckpointConflictError:
            _LOG.warning("entity %r was committed by another worker; abandoning this batch", instance_id)
            return [], every
        row = rows.checkpoint_instance_row(
            task_hub=self._hub.names.hub,
            instance_id=instance_id,
            execution_id=execution_id,
            new_events=written,
            custom_status=new_state.status().to_json(),
            now=now,
        )
        if entity.stored:
            row.pop("CreatedTime", None)
        await retry_transient(lambda: self._hub.instances.upsert_merge(row), what="writing the Instances row")
        self._keep(instance_id, _Entity(new_state, etag, stored=True))
        self.batches_run += 1
        return every, []

    async def _repair_row(self, instance_id: str, entity: _Entity, execution_id: str) -> None:
        """Write the row of the stored execution if it shows an older one (#1252 for entities:
        ``get_entity`` would read a state that went backwards)."""
        row = await self._hub.instances.get(instance_id, resolve_blobs=False)
        if row is None or row.get("ExecutionId") != execution_id:
            _LOG.warning("repairing Instances row of entity %r from its history", instance_id)
            started = ev.ExecutionStarted(
                orchestration_instance=ev.OrchestrationInstance(
                    instance_id=instance_id, execution_id=execution_id
                ),
                name=instance_id,
                input=entity.state.to_json(),
            )
            repaired = rows.checkpoint_instance_row(
                task_hub=self._hub.names.hub,
                instance_id=instance_id,
                execution_id=execution_id,
                new_events=[started],
                custom_status=entity.state.status().to_json(),
            )
            if row is not None:
                repaired.pop("CreatedTime", None)
            await self._hub.instances.upsert_merge(repaired)
        entity.loaded_execution_id = None

    def drop(self, instance_id: str) -> None:
        self._cache.pop(instance_id, None)

    def _keep(self, instance_id: str, entity: _Entity) -> None:
        self._cache[instance_id] = entity
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


def _arrival_order(m: ReceivedMessage) -> tuple[datetime, int]:
    inserted = m.inserted_on or datetime.min.replace(tzinfo=UTC)
    return (inserted, m.message.sequence_number if m.message else 0)
