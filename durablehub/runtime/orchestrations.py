"""One orchestration episode: messages in, history committed, messages out.

``OrchestrationRunner.process`` takes the messages a control queue delivered for one
instance and does what DurableTask.AzureStorage's work-item flow does (taskhub-layout.md §6):
load the history (or take the cached executor, valid while the sentinel ETag is ours), sort
the messages into accepted / duplicate / stale / early, run the engine, and commit in the
reference's order -- send outbound messages, write history under the sentinel ETag, merge the
Instances row. It returns which messages to delete and which to hand back (early responses
whose scheduling event is not committed yet); the caller deletes them last.

Orchestrator code runs on ``OrchestratorThreads``, never on the loop. An episode whose code
has not returned after ``orchestrator_timeout_seconds`` fails its instance with
``OrchestratorTimeoutError`` (naming the instance and the deadline), as Azure Functions
fails an orchestrator that exceeds its function timeout; its thread is left to finish alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration
from durablehub.engine.episode import EpisodePlan, plan_episode
from durablehub.engine.replay import EpisodeResult, OrchestrationExecutor
from durablehub.errors import CheckpointConflictError, OrchestratorTimeoutError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.delivery import Delivery
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.orchestrator_threads import OrchestratorThreads
from durablehub.taskhub import envelope, rows
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage

_LOG = logging.getLogger("durablehub.worker")

_RESPONSES = (
    ev.TaskCompleted,
    ev.TaskFailed,
    ev.SubOrchestrationInstanceCompleted,
    ev.SubOrchestrationInstanceFailed,
    ev.TimerFired,
)
_SCHEDULING = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated)
_NUMBERED = (*_SCHEDULING, ev.EventSent)  # events recording an orchestrator action, by its id


def _response_id(event: ev.HistoryEvent) -> int | None:
    if isinstance(event, ev.TimerFired):
        return event.timer_id
    if isinstance(event, _RESPONSES):
        return event.task_scheduled_id  # type: ignore[union-attr]
    return None


@dataclass
class InstanceState:
    """What a worker knows of one instance's current generation."""

    instance_id: str
    history: list[ev.HistoryEvent] = field(default_factory=list)
    sentinel_etag: str | None = None
    executor: OrchestrationExecutor | None = None
    scheduled: set[int] = field(default_factory=set)
    answered: set[int] = field(default_factory=set)
    episodes: int = 0
    final_status: OrchestrationStatus | None = None
    started: ev.ExecutionStarted | None = None  # kept, not searched for: it is read per message

    @property
    def execution_id(self) -> str | None:
        started = self.started
        return started.orchestration_instance.execution_id if started else None

    @property
    def finished(self) -> bool:
        return self.final_status is not None

    def append(self, events: list[ev.HistoryEvent]) -> None:
        for event in events:
            self.history.append(event)
            if isinstance(event, _SCHEDULING):
                self.scheduled.add(event.event_id)
            elif (rid := _response_id(event)) is not None:
                self.answered.add(rid)
            elif isinstance(event, ev.OrchestratorStarted):
                self.episodes += 1
            elif isinstance(event, ev.ExecutionStarted) and self.started is None:
                self.started = event
            elif isinstance(event, (ev.ExecutionCompleted, ev.ContinueAsNew)):
                self.final_status = event.orchestration_status

    @property
    def next_action_id(self) -> int:
        """The id the orchestrator's next action would take (actions are numbered from 0)."""
        return 1 + max((e.event_id for e in self.history if isinstance(e, _NUMBERED)), default=-1)

    @classmethod
    def from_history(cls, page: rows.HistoryPage) -> InstanceState:
        state = cls(instance_id=page.instance_id, sentinel_etag=page.sentinel_etag)
        state.append(list(page.events))
        return state


class ExecutorCache:
    """Instances kept between episodes (LRU), so an N-event orchestration costs O(N)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, InstanceState] = OrderedDict()

    def get(self, instance_id: str) -> InstanceState | None:
        state = self._items.get(instance_id)
        if state is not None:
            self._items.move_to_end(instance_id)
        return state

    def put(self, state: InstanceState) -> None:
        if self._capacity <= 0:
            return
        self._items[state.instance_id] = state
        self._items.move_to_end(state.instance_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def drop(self, instance_id: str) -> None:
        self._items.pop(instance_id, None)

    def drop_where(self, predicate: Callable[[str], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    """Message ids the caller deletes (consumed or discarded) or hands back (too early)."""

    delete: list[str]
    abandon: list[str]


def _missing_orchestrator(message: str) -> Callable[..., Any]:
    def orchestrator(ctx: Any, _input: Any) -> Any:
        raise LookupError(message)

    return orchestrator


class OrchestrationRunner:
    def __init__(
        self,
        app: App,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        delivery: Delivery | None = None,
    ) -> None:
        self._app = app
        self._hub = hub
        self._options = options
        self._delivery = delivery or Delivery(hub, options)
        self.cache = ExecutorCache(options.orchestration_cache_size)
        self._threads = OrchestratorThreads()
        self.episodes_run = 0

    def close(self) -> None:
        self._threads.close()

    async def process(self, instance_id: str, messages: list[ReceivedMessage]) -> EpisodeOutcome:
        state = self.cache.get(instance_id)
        if state is None:
            state = InstanceState.from_history(await self._hub.history.load(instance_id))
        delete: list[str] = []
        abandon: list[str] = []
        accepted: list[ev.HistoryEvent] = []
        new_start: ev.ExecutionStarted | None = None
        accepted_ids: set[int] = set()

        def early(m: ReceivedMessage, why: str) -> None:
            if m.dequeue_count >= self._options.max_early_message_dequeues:
                _LOG.warning(
                    "discarding message %s for %r after %d dequeues: %s",
                    m.message_id,
                    instance_id,
                    m.dequeue_count,
                    why,
                )
                delete.append(m.message_id)
            else:
                abandon.append(m.message_id)

        for m in sorted(messages, key=_arrival_order):
            assert m.message is not None and m.message.task_message is not None
            event = m.message.event
            target_execution = m.message.task_message.orchestration_instance.execution_id
            if isinstance(event, ev.ExecutionStarted):
                execution = event.orchestration_instance.execution_id
                if execution == state.execution_id or (new_start and execution == _exec(new_start)):
                    delete.append(m.message_id)  # a duplicate start (at-least-once delivery)
                elif new_start is None and (not state.history or state.finished):
                    new_start = event
                    delete.append(m.message_id)
                elif new_start is not None:
                    abandon.append(m.message_id)  # one generation per episode; the next one later
                else:
                    _LOG.warning(
                        "discarding start of %r execution %s: execution %s is still running",
                        instance_id,
                        execution,
                        state.execution_id,
                    )
                    delete.append(m.message_id)
                continue
            current = _exec(new_start) if new_start else state.execution_id
            if current is None:
                early(m, "no such instance (yet)")
                continue
            if target_execution not in (None, current):
                delete.append(m.message_id)  # addressed to an earlier generation
                continue
            if new_start is None and state.finished:
                delete.append(m.message_id)  # the instance has ended: nothing will consume it
                continue
            rid = _response_id(event)
            if rid is not None:
                if new_start is not None or rid not in state.scheduled:
                    early(m, f"response to id {rid} arrived before its scheduling event was committed")
                    continue
                if rid in state.answered or rid in accepted_ids:
                    delete.append(m.message_id)  # a duplicate response
                    continue
                accepted_ids.add(rid)
            accepted.append(event)
            delete.append(m.message_id)

        if new_start is None and not accepted:
            if state.finished:
                await self._repair_instance_row(state)
            return EpisodeOutcome(delete=delete, abandon=abandon)

        if new_start is not None:
            state = InstanceState(instance_id=instance_id, sentinel_etag=state.sentinel_etag)
        try:
            await self._run_episode(state, new_start, accepted)
        except CheckpointConflictError:
            _LOG.warning("instance %r was committed by another worker; abandoning this episode", instance_id)
            self.cache.drop(instance_id)
            return EpisodeOutcome(delete=[], abandon=[m.message_id for m in messages])
        except Exception:
            self.cache.drop(instance_id)
            raise
        return EpisodeOutcome(delete=delete, abandon=abandon)

    async def _run_episode(
        self, state: InstanceState, new_start: ev.ExecutionStarted | None, accepted: list[ev.HistoryEvent]
    ) -> None:
        now = datetime.now(UTC)
        new_events: list[ev.HistoryEvent] = [ev.OrchestratorStarted(timestamp=now)]
        if new_start is not None:
            new_events.append(new_start)
        new_events.extend(accepted)
        started = new_start or state.started
        assert started is not None
        past = list(state.history)
        executor = state.executor
        if executor is None:
            try:
                fn = self._app.get_orchestrator(started.name).fn
            except LookupError as exc:
                fn = _missing_orchestrator(str(exc))
            executor = state.executor = OrchestrationExecutor(fn)
            call: Callable[[], EpisodeResult] = functools.partial(executor.execute, past, new_events)
        else:
            call = functools.partial(executor.resume, new_events)
        deadline = self._options.orchestrator_timeout_seconds
        timed_out = False
        try:
            result = await asyncio.wait_for(self._threads.run(call), timeout=deadline)
        except TimeoutError:
            # The thread cannot be stopped and the executor is mid-episode: neither is used
            # again. Failing the instance (as a Functions timeout does) rather than retrying
            # it: a replay would block again, holding a slot each time.
            state.executor = None
            timed_out = True
            error = OrchestratorTimeoutError(state.instance_id, started.name, deadline)
            _LOG.error("%s", error)
            result = _failed(error, next_id=state.next_action_id)
        plan = plan_episode(result, started=started, now=now)
        episode = state.episodes + 1
        await self._send(plan, started, episode)
        written = new_events + list(plan.history)
        execution_id = _exec(started)
        assert execution_id is not None
        state.sentinel_etag = await self._hub.history.commit(
            state.instance_id,
            execution_id,
            written,
            first_sequence_number=len(past),
            sentinel_etag=state.sentinel_etag,
        )
        row = rows.checkpoint_instance_row(
            task_hub=self._hub.names.hub,
            instance_id=state.instance_id,
            execution_id=execution_id,
            new_events=written,
            custom_status=result.custom_status,
            now=now,
        )
        if timed_out:
            del row["CustomStatus"]  # unknown here: the merge keeps the last one written
        await self._hub.instances.upsert_merge(row)
        state.append(written)
        self.episodes_run += 1
        if state.finished:
            self.cache.drop(state.instance_id)
        else:
            self.cache.put(state)

    async def _send(self, plan: EpisodePlan, started: ev.ExecutionStarted, episode: int) -> None:
        me = started.orchestration_instance
        now = datetime.now(UTC)

        async def send_one(om: Any) -> None:
            message = envelope.MessageData(
                task_message=envelope.TaskMessage(
                    event=om.event,
                    orchestration_instance=ev.OrchestrationInstance(
                        instance_id=om.target_instance_id, execution_id=om.target_execution_id
                    ),
                ),
                episode=episode,
                sender=me,
            )
            if om.to_work_items:
                await self._delivery.to_activities(message)
                return
            delay = om.visible_at - now if om.visible_at is not None and om.visible_at > now else None
            await self._delivery.to_instance(om.target_instance_id, message, visible_after=delay)

        await bounded_gather([send_one(om) for om in plan.messages], limit=32)

    async def _repair_instance_row(self, state: InstanceState) -> None:
        """A crash between the History and Instances writes leaves "Running" behind (#1252)."""
        assert state.final_status is not None and state.execution_id is not None
        row = await self._hub.instances.get(state.instance_id, resolve_blobs=False)
        expected = state.final_status.table_name
        if (
            row is not None
            and row.get("RuntimeStatus") == expected
            and row.get("ExecutionId") == state.execution_id
        ):
            return
        _LOG.warning(
            "repairing Instances row of %r: history says %s, row says %s",
            state.instance_id,
            expected,
            None if row is None else row.get("RuntimeStatus"),
        )
        await self._hub.instances.upsert_merge(
            rows.checkpoint_instance_row(
                task_hub=self._hub.names.hub,
                instance_id=state.instance_id,
                execution_id=state.execution_id,
                new_events=state.history,
                custom_status=row.get("CustomStatus") if row else None,
            )
        )


def _failed(error: Exception, *, next_id: int) -> EpisodeResult:
    """An episode that ends the orchestration as FAILED with ``error`` and no other action."""
    completion = CompleteOrchestration(
        id=next_id, status=OrchestrationStatus.FAILED, failure_details=FailureDetails.from_exception(error)
    )
    return EpisodeResult(actions=(completion,), custom_status=None, is_complete=True, is_suspended=False)


def _exec(started: ev.ExecutionStarted | None) -> str | None:
    return started.orchestration_instance.execution_id if started else None


def _arrival_order(m: ReceivedMessage) -> tuple[datetime, int]:
    inserted = m.inserted_on or datetime.min.replace(tzinfo=UTC)
    return (inserted, m.message.sequence_number if m.message else 0)


async def bounded_gather(coros: list[Any], *, limit: int) -> None:
    if len(coros) <= 1:
        for coro in coros:
            await coro
        return
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Any) -> None:
        async with semaphore:
            await coro

    await asyncio.gather(*(run(c) for c in coros))
