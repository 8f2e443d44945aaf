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
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, SizeLimitedCodec
from durablehub.engine.episode import new_execution_id
from durablehub.entities.batch import EntityBatchResult, run_entity_batch
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import SchedulerState
from durablehub.errors import CheckpointConflictError, EntityOperationTimeoutError
from durablehub.runtime.cache import InstanceCache
from durablehub.runtime.checkpoint import Checkpoint, Checkpointer
from durablehub.runtime.delivery import Handovers
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.retries import retry_transient
from durablehub.runtime.threads import UserCodeThreads
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage
from durablehub.taskhub.records import InstanceUpdate
from durablehub.telemetry import tracing
from durablehub.telemetry.tracking import Tracker

__all__ = ["EntityRunner", "scheduler_state_of"]

_LOG = logging.getLogger("durablehub.worker")


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
    def __init__(
        self,
        target_of: Callable[[str], Any],
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        checkpoints: Checkpointer,
        threads: UserCodeThreads,
    ) -> None:
        self._target_of = target_of  # an entity name's code (``UserCode.entity_target``)
        self._hub = hub
        self._options = options
        self._checkpoints = checkpoints
        self._threads = threads
        # An entity's state or sent payload over the hub's limit fails its operation.
        self._codec = SizeLimitedCodec(JSON_CODEC, hub.settings.max_payload_bytes)
        # Entities kept between batches, forgotten with their partition (``InstanceCache``).
        self.cache: InstanceCache[_Entity] = InstanceCache(options.orchestration_cache_size)
        self.batches_run = 0
        self.tracker = Tracker(hub.settings.task_hub)
        self.emits_spans = True  # off for the sidecar: its SDK workers emit the operations' spans

    async def process(
        self, instance_id: str, messages: list[ReceivedMessage], later: Handovers | None = None
    ) -> tuple[list[str], list[str]]:
        """Run and commit one batch; returns the message ids to delete and to hand back."""
        every = [m.message_id for m in messages]
        try:
            entity_id = EntityInstanceId.parse(instance_id)
        except ValueError as exc:
            _LOG.warning("discarding %d messages for %r: %s", len(messages), instance_id, exc)
            return every, []
        entity = self.cache.get(instance_id)
        self.cache.drop(instance_id)  # kept again once this batch is recorded
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
            target: Any = self._target_of(entity_id.entity)
            missing = ""
        except LookupError as exc:  # the code host has said so once per name (runtime/unknown.py)
            target, missing = None, str(exc)
            _LOG.debug("%s: %s", instance_id, missing)
        now = datetime.now(UTC)
        batch = functools.partial(
            run_entity_batch,
            entity_id,
            target,
            entity.state,
            events,
            now=now,
            missing_reason=missing,
            codec=self._codec,
        )
        result, durations = await self._run(instance_id, batch)
        new_state = result.state
        if not result.messages and new_state.to_json() == entity.state.to_json():
            if entity.loaded_execution_id is not None:
                await self._repair_row(instance_id, entity, entity.loaded_execution_id)
            self.cache.put(instance_id, entity)  # only duplicates: nothing to record
            self._track(entity_id, result, durations)
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
            etag = await self._checkpoints.commit(
                Checkpoint(
                    instance_id=instance_id,
                    execution_id=execution_id,
                    sender=started.orchestration_instance,
                    episode=1,
                    messages=result.messages,
                    history=written,
                    sentinel_etag=entity.sentinel_etag,
                    row=InstanceUpdate(
                        instance_id=instance_id,
                        execution_id=execution_id,
                        events=written,
                        custom_status=new_state.status().to_json(),
                        keep_created_time=entity.stored,
                        now=now,
                    ),
                ),
                later=later,
            )
        except CheckpointConflictError:
            _LOG.warning("entity %r was committed by another worker; abandoning this batch", instance_id)
            return [], every
        if self.emits_spans:
            tracing.entity_batch_committed(instance_id, events, seen_before=entity.state.processed, now=now)
        self.cache.put(instance_id, _Entity(new_state, etag, stored=True))
        self.batches_run += 1
        self._track(entity_id, result, durations)
        return every, []

    def _track(
        self, entity_id: EntityInstanceId, result: EntityBatchResult, durations: dict[str, float]
    ) -> None:
        for op in result.operations:
            self.tracker.operation(
                instance_id=str(entity_id),
                entity_name=entity_id.entity,
                operation_id=op.request_id,
                operation_name=op.operation,
                input=op.input,
                output=op.result,
                failure=op.failure,
                seconds=durations.get(op.request_id, 0.0),
            )

    async def _run(
        self, instance_id: str, batch: Callable[..., EntityBatchResult]
    ) -> tuple[EntityBatchResult, dict[str, float]]:
        """Run the batch's user code on a user-code thread. An operation still running at its
        deadline is given up: the batch runs again (on a fresh thread, from the same state)
        with that operation failed, so its caller gets EntityOperationTimeoutError and the
        entity goes on. Operations before it run twice, as after any crash of a batch."""
        deadline = self._options.entity_operation_timeout_seconds
        given_up: dict[str, Exception] = {}
        while True:
            watch = _Watch()
            job = asyncio.ensure_future(
                self._threads.run(functools.partial(batch, watch=watch, given_up=given_up))
            )
            try:
                stuck = await _first_overrun(job, watch, deadline)
            finally:
                job.cancel()  # done, or given up: its thread is left to finish alone
            if stuck is None:
                return job.result(), watch.durations
            request_id, operation, _ = stuck
            error = EntityOperationTimeoutError(instance_id, operation, deadline)
            _LOG.error("%s", error)
            given_up = {**given_up, request_id: error}

    async def _repair_row(self, instance_id: str, entity: _Entity, execution_id: str) -> None:
        """Write the row of the stored execution if it shows an older one (#1252 for entities:
        ``get_entity`` would read a state that went backwards)."""
        record = await self._hub.instances.get_record(instance_id, resolve_blobs=False)
        if record is None or record.execution_id != execution_id:
            _LOG.warning("repairing Instances row of entity %r from its history", instance_id)
            started = ev.ExecutionStarted(
                orchestration_instance=ev.OrchestrationInstance(
                    instance_id=instance_id, execution_id=execution_id
                ),
                name=instance_id,
                input=entity.state.to_json(),
            )
            repaired = InstanceUpdate(
                instance_id=instance_id,
                execution_id=execution_id,
                events=[started],
                custom_status=entity.state.status().to_json(),
                keep_created_time=record is not None,
            )
            await self._checkpoints.commit(
                Checkpoint(instance_id=instance_id, execution_id=execution_id, row=repaired)
            )
        entity.loaded_execution_id = None


class _Watch:
    """Which operation a batch's thread is in, and since when (written there, read on the loop)."""

    def __init__(self) -> None:
        self.current: tuple[str, str, float] | None = None
        self.durations: dict[str, float] = {}  # seconds, by request id (tracking logs)

    def begin(self, request_id: str, operation: str) -> None:
        self.current = (request_id, operation, time.monotonic())

    def end(self) -> None:
        current = self.current
        if current is not None:
            self.durations[current[0]] = time.monotonic() - current[2]
        self.current = None


async def _first_overrun(
    job: asyncio.Future[EntityBatchResult], watch: _Watch, deadline: float
) -> tuple[str, str, float] | None:
    """Wait for ``job``; None when it is done, else the operation that ran past ``deadline``."""
    while True:
        current = watch.current
        left = deadline if current is None else current[2] + deadline - time.monotonic()
        done, _ = await asyncio.wait({job}, timeout=max(left, 0.0))
        if done:
            return None
        if current is not None and watch.current is current and time.monotonic() - current[2] >= deadline:
            return current


def _arrival_order(m: ReceivedMessage) -> tuple[datetime, int]:
    inserted = m.inserted_on or datetime.min.replace(tzinfo=UTC)
    return (inserted, m.message.sequence_number if m.message else 0)
