"""One orchestration episode: messages in, history committed, messages out.

``OrchestrationRunner.process`` takes the messages a control queue delivered for one
instance and does what DurableTask.AzureStorage's work-item flow does (taskhub-layout.md §6):
load the history (or take the cached executor, valid while the sentinel ETag is ours), sort
the messages into accepted / duplicate / stale / early, run the engine, and commit in the
reference's order -- send outbound messages, write history under the sentinel ETag, merge the
Instances row. It returns which messages to delete and which to hand back (early responses
whose scheduling event is not committed yet); the caller deletes them last.

Where the orchestrator code runs is ``durablehub.runtime.hosting`` (in this process for an
``App``, in a connected SDK worker for the sidecar); this module only gives it the episode
and records what it answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from durablehub.engine import history as ev
from durablehub.engine.episode import (
    OutboundMessage,
    derived_execution_id,
    plan_episode,
    sub_orchestration_call,
)
from durablehub.engine.replay import EpisodeResult
from durablehub.entities.entity_id import is_entity_instance_id
from durablehub.errors import CheckpointConflictError
from durablehub.models import OrchestrationStatus
from durablehub.runtime.cache import InstanceCache
from durablehub.runtime.checkpoint import Checkpoint, Checkpointer
from durablehub.runtime.delivery import Delivery, Handovers
from durablehub.runtime.entities import EntityRunner
from durablehub.runtime.hosting import EpisodeDone, EpisodeWork, InProcessCode, UserCode
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.retries import abandon_delay, retry_transient
from durablehub.runtime.rewinding import messages_for_children
from durablehub.runtime.threads import UserCodeThreads
from durablehub.runtime.versions import EpisodeRejected, VersionGate
from durablehub.taskhub import rows
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import ReceivedMessage
from durablehub.taskhub.records import InstanceUpdate
from durablehub.telemetry import tracing
from durablehub.telemetry.metrics import EPISODES_ACTIVE
from durablehub.telemetry.tracking import Tracker
from durablehub.versioning import version_mismatch

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
    session: object | None = None  # kept by the code host between episodes (a warm executor)
    scheduled: set[int] = field(default_factory=set)
    answered: set[int] = field(default_factory=set)
    # Ids scheduled again after they were answered (the durabletask SDK's retry policies reuse
    # the id of the call they retry), with when: an answer older than that is the first attempt's.
    rescheduled_at: dict[int, datetime] = field(default_factory=dict)
    episodes: int = 0
    final_status: OrchestrationStatus | None = None
    started: ev.ExecutionStarted | None = None  # kept, not searched for: it is read per message
    # True once this worker has merged the Instances row for this state. A state read from
    # history may follow a crash between the History and Instances writes of its first
    # episode: its next checkpoint then writes the whole row again (#1252, running variant).
    row_written: bool = False
    # Rows a torn checkpoint left beyond the history (``HistoryPage``): deleted by the next one.
    uncommitted_row_keys: tuple[str, ...] = ()

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
                if event.event_id in self.answered:
                    self.answered.discard(event.event_id)
                    self.rescheduled_at[event.event_id] = event.timestamp
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
        state = cls(
            instance_id=page.instance_id,
            sentinel_etag=page.sentinel_etag,
            uncommitted_row_keys=page.uncommitted_row_keys,
        )
        state.append(list(page.events))
        return state


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    """Message ids the caller deletes (consumed or discarded) or hands back (too early)."""

    delete: list[str]
    abandon: list[str]
    rejected_delay: int | None = None
    """Set when the versioning policy rejected the episode: ``abandon`` holds every message,
    to be hidden this many seconds (a deliberate hand-back, not a failure)."""


class OrchestrationRunner:
    def __init__(
        self,
        code: UserCode,
        hub: AsyncTaskHub,
        options: WorkerOptions,
        *,
        delivery: Delivery | None = None,
    ) -> None:
        self._code = code
        self._emits_spans = isinstance(code, InProcessCode)
        self._hub = hub
        self._options = options
        self._delivery = delivery or Delivery(hub, options)
        self._checkpoints = Checkpointer(hub, self._delivery)
        self.cache: InstanceCache[InstanceState] = InstanceCache(options.orchestration_cache_size)
        self.episodes_run = 0
        self.versions = VersionGate(options.versioning, base_delay_seconds=options.abandon_delay_seconds)
        self.tracker = Tracker(hub.settings.task_hub)
        # Instances "@name@key": user code on the same threads, recorded by the same checkpoints.
        threads = code.threads if isinstance(code, InProcessCode) else UserCodeThreads("durablehub-entity")
        self._entity_threads = threads
        self.entities = EntityRunner(
            code.entity_target, hub, options, checkpoints=self._checkpoints, threads=threads
        )
        self.entities.emits_spans = self._emits_spans

    def close(self) -> None:
        self._entity_threads.close()

    def forget(self, owned_by: Callable[[str], bool]) -> None:
        """Drop the cached orchestrations and entities of a partition (``owned_by`` its ids)."""
        self.cache.drop_where(owned_by)
        self.entities.cache.drop_where(owned_by)

    async def process(self, instance_id: str, messages: list[ReceivedMessage]) -> EpisodeOutcome:
        """Run one episode of ``instance_id`` on ``messages``; the caller deletes or hands
        back the messages as the outcome says."""
        later = self._delivery.later()
        EPISODES_ACTIVE.add(1)
        try:
            return await self._process(instance_id, messages, later)
        finally:
            EPISODES_ACTIVE.add(-1)
            # Once the episode is recorded (or failed to be), not after the delete of the
            # messages that triggered it: that would add a round trip to every step.
            await later.give()

    async def _process(
        self, instance_id: str, messages: list[ReceivedMessage], later: Handovers
    ) -> EpisodeOutcome:
        if is_entity_instance_id(instance_id):  # --- entities: durablehub.runtime.entities ---
            try:
                delete, abandon = await self.entities.process(instance_id, messages, later)
            except EpisodeRejected as rejected:  # no code for the entity here: nothing is written
                _LOG.debug("handing back the messages of entity %r: %s", instance_id, rejected.reason)
                dequeued = max(m.dequeue_count for m in messages)
                delay = abandon_delay(self._options.abandon_delay_seconds, dequeued)
                return EpisodeOutcome(
                    delete=[], abandon=[m.message_id for m in messages], rejected_delay=delay
                )
            except Exception:
                self.entities.cache.drop(instance_id)
                raise
            return EpisodeOutcome(delete=delete, abandon=abandon)
        state = self.cache.get(instance_id)
        known = state is not None  # from this worker's cache, or assumed: not read from storage
        if state is None and _starts_a_new_instance(messages):
            # No read of an empty history: the sentinel's conditional insert checks the guess.
            state = InstanceState(instance_id=instance_id)
        elif state is None:
            state = InstanceState.from_history(await self._load(instance_id))
            known = False
        triage = _triage(instance_id, state, messages, self._options.max_early_message_dequeues)
        if known and triage.doubtful:
            # Discarding or holding back a message on cached state alone could lose it: another
            # worker may have committed since (a partition that moved away and back, or two
            # owners for a moment). Decide again on the stored history.
            self.cache.drop(instance_id)
            state = InstanceState.from_history(await self._load(instance_id))
            triage = _triage(instance_id, state, messages, self._options.max_early_message_dequeues)
        triage.log_discards(instance_id)
        delete, abandon, accepted = triage.delete, triage.abandon, triage.accepted
        new_start, rewind = triage.new_start, triage.rewind

        if rewind is not None:
            started = state.started
            assert started is not None
            try:
                if self.versions.check(started, next_id=state.next_action_id) is not None:
                    _LOG.warning(
                        "not rewinding %r: %s (failure strategy FAIL: it stays failed)",
                        instance_id,
                        version_mismatch(self.versions.options, started.version),
                    )
                    await self._repair_instance_row(state)  # the client marked it Pending
                    return EpisodeOutcome(delete=delete, abandon=abandon)
                await self._rewind(state, rewind, later)
            except EpisodeRejected as rejected:
                delay = self.versions.rejected(started, rejected.reason, said=rejected.said)
                return EpisodeOutcome(
                    delete=[], abandon=[m.message_id for m in messages], rejected_delay=delay
                )
            except CheckpointConflictError:
                _LOG.warning(
                    "instance %r was committed by another worker; abandoning its rewind", instance_id
                )
                return EpisodeOutcome(delete=[], abandon=[m.message_id for m in messages])
            return EpisodeOutcome(delete=delete, abandon=abandon)

        if new_start is None and not accepted:
            if state.finished or (not state.row_written and state.started is not None):
                await self._repair_instance_row(state)
            return EpisodeOutcome(delete=delete, abandon=abandon)

        if new_start is not None:
            state = InstanceState(
                instance_id=instance_id,
                sentinel_etag=state.sentinel_etag,
                uncommitted_row_keys=state.uncommitted_row_keys,
            )
            if new_start.scheduled_start_time is not None:
                terminated = await self._terminated_before_start(new_start)
                if terminated is not None:
                    accepted.insert(0, terminated)
        try:
            await self._run_episode(state, new_start, accepted, later)
        except EpisodeRejected as rejected:  # the versioning policy: nothing is written
            started = new_start or state.started
            assert started is not None
            delay = self.versions.rejected(started, rejected.reason, said=rejected.said)
            return EpisodeOutcome(delete=[], abandon=[m.message_id for m in messages], rejected_delay=delay)
        except CheckpointConflictError:
            _LOG.warning("instance %r was committed by another worker; abandoning this episode", instance_id)
            self.cache.drop(instance_id)
            return EpisodeOutcome(delete=[], abandon=[m.message_id for m in messages])
        except Exception:
            self.cache.drop(instance_id)
            raise
        return EpisodeOutcome(delete=delete, abandon=abandon)

    async def _load(self, instance_id: str) -> rows.HistoryPage:
        return await retry_transient(lambda: self._hub.history.load(instance_id), what="loading history")

    async def _run_episode(
        self,
        state: InstanceState,
        new_start: ev.ExecutionStarted | None,
        accepted: list[ev.HistoryEvent],
        later: Handovers,
    ) -> None:
        now = datetime.now(UTC)
        new_events: list[ev.HistoryEvent] = [ev.OrchestratorStarted(timestamp=now)]
        if new_start is not None:  # recorded with its orchestration span's id (and trace)
            new_start = tracing.starting_execution(new_start, now=now)
            new_events.append(new_start)
        new_events.extend(accepted)
        started = new_start or state.started
        assert started is not None
        refused = self.versions.check(started, next_id=state.next_action_id)  # raises on REJECT
        session, state.session = state.session, None  # a failed episode leaves no warm session
        if refused is not None:
            done = EpisodeDone(result=refused)
        else:
            done = await self._code.run_episode(
                EpisodeWork(
                    instance_id=state.instance_id,
                    started=started,
                    past=state.history,
                    new_events=new_events,
                    next_action_id=state.next_action_id,
                    session=session,
                )
            )
        state.session = done.session
        self.versions.ran(state.instance_id)
        await self._commit(state, started, new_events, done.result, later, now=now, timed_out=done.timed_out)

    async def _terminated_before_start(self, start: ev.ExecutionStarted) -> ev.ExecutionTerminated | None:
        """A client terminates a scheduled start by marking its Pending row (a message could
        not be ordered after the hidden start); the start then ends terminated, running nothing."""
        oi = start.orchestration_instance
        record = await self._hub.instances.get_record(oi.instance_id, resolve_blobs=True)
        if (
            record is None
            or record.execution_id != oi.execution_id
            or record.runtime_status is not OrchestrationStatus.TERMINATED
        ):
            return None
        return ev.ExecutionTerminated(input=record.output)

    async def _rewind(self, state: InstanceState, event: ev.ExecutionRewound, later: Handovers) -> None:
        """Rewind a failed instance (``durablehub.engine.rewind``) and run its rewind episode."""
        started = state.started
        assert started is not None
        now = datetime.now(UTC)
        new_events: list[ev.HistoryEvent] = [ev.OrchestratorStarted(timestamp=now), event]
        work = EpisodeWork(
            instance_id=state.instance_id,
            started=started,
            past=state.history,
            new_events=new_events,
            next_action_id=state.next_action_id,
        )
        rewind = await self._code.rewind(work, now=now)
        plan, done = rewind.plan, rewind.done
        if plan is None:  # the replay did not return in time: the instance stays failed
            await self._commit(state, started, new_events, done.result, later, now=now)
            return
        children = await messages_for_children(
            self._hub.instances, plan.children, parent=started, reason=event.reason, now=now
        )
        rewound = InstanceState(
            instance_id=state.instance_id,
            sentinel_etag=state.sentinel_etag,
            session=done.session,
            uncommitted_row_keys=state.uncommitted_row_keys,
        )
        rewound.append(list(plan.history))
        result, timed_out = done.result, done.timed_out
        _LOG.info(
            "rewinding %r: %d events forgotten, %d messages sent again",
            state.instance_id,
            len(plan.replaced),
            len(plan.messages) + len(children),
        )
        await self._commit(
            rewound,
            started,
            new_events,
            result,
            later,
            now=now,
            resend=[*plan.messages, *children],
            replaced=plan.replaced,
            timed_out=timed_out,
        )
        self.tracker.rewound(instance_id=state.instance_id, started=started, reason=event.reason)

    async def _commit(
        self,
        state: InstanceState,
        started: ev.ExecutionStarted,
        new_events: list[ev.HistoryEvent],
        result: EpisodeResult,
        later: Handovers,
        *,
        now: datetime,
        resend: list[OutboundMessage] | None = None,
        replaced: dict[int, ev.HistoryEvent] | None = None,
        timed_out: bool = False,
    ) -> None:
        """Record an episode (``Checkpointer``: send, write history, merge the row)."""
        plan = plan_episode(
            result,
            started=started,
            now=now,
            started_before=_children_started(state.history),
            trace_salt=len(state.history),
        )
        written = new_events + list(plan.history)
        execution_id = _exec(started)
        assert execution_id is not None
        # A state read from history whose row this worker never wrote may follow a crash
        # between the History and Instances writes of its first episode: write it whole.
        row_events = written if state.row_written or not state.history else [started, *written]
        state.sentinel_etag = await self._checkpoints.commit(
            Checkpoint(
                instance_id=state.instance_id,
                execution_id=execution_id,
                sender=started.orchestration_instance,
                episode=state.episodes + 1,
                messages=[*(resend or ()), *plan.messages],
                history=written,
                first_sequence_number=len(state.history),
                sentinel_etag=state.sentinel_etag,
                replaced=replaced,
                uncommitted_row_keys=state.uncommitted_row_keys,
                row=InstanceUpdate(
                    instance_id=state.instance_id,
                    execution_id=execution_id,
                    events=row_events,
                    custom_status=result.custom_status,
                    keep_custom_status=timed_out,  # unknown: the merge keeps the last one written
                    now=now,
                ),
            ),
            later=later,
        )
        state.uncommitted_row_keys = ()
        state.row_written = True
        if self._emits_spans:  # the sidecar's SDK workers emit the spans of the code they run
            tracing.episode_committed(
                started=started,
                past=state.history,
                new_events=written,
                runtime_status=plan.runtime_status,
                now=now,
                new_trace=plan.completion is not None and plan.completion.new_trace,
            )
        self.tracker.episode(
            instance_id=state.instance_id,
            started=started,
            past=state.history,
            new_events=new_events,
            written=plan.history,
            listening=result.listening,
            now=now,
        )
        state.append(written)
        self.episodes_run += 1
        if state.finished:
            self.cache.drop(state.instance_id)
        else:
            self.cache.put(state.instance_id, state)

    async def _repair_instance_row(self, state: InstanceState) -> None:
        """A crash (or a storage error) between the History and Instances writes leaves the row
        behind the history (#1252): "Running" for a finished instance, "Pending" or no row for
        one whose start was committed. Redelivered messages are then duplicates; fix the row."""
        assert state.execution_id is not None
        record = await self._hub.instances.get_record(state.instance_id, resolve_blobs=False)
        repaired = InstanceUpdate(
            instance_id=state.instance_id,
            execution_id=state.execution_id,
            events=state.history,
            custom_status=record.custom_status if record else None,
        )
        if (
            record is not None
            and record.runtime_status is repaired.runtime_status
            and record.execution_id == state.execution_id
        ):
            state.row_written = True
            return
        if (
            record is not None
            and record.runtime_status is OrchestrationStatus.PENDING
            and record.execution_id != state.execution_id
        ):
            return  # ahead of the history, not behind: a client's new start, its message on the way
        _LOG.warning(
            "repairing Instances row of %r: history says %s, row says %s",
            state.instance_id,
            repaired.runtime_status,
            None if record is None else record.runtime_status,
        )
        await self._checkpoints.commit(
            Checkpoint(instance_id=state.instance_id, execution_id=state.execution_id, row=repaired)
        )
        state.row_written = True


@dataclass
class _Triage:
    """How one batch of messages for an instance sorts out against what is known of it."""

    delete: list[str] = field(default_factory=list)
    abandon: list[str] = field(default_factory=list)
    accepted: list[ev.HistoryEvent] = field(default_factory=list)
    new_start: ev.ExecutionStarted | None = None
    rewind: ev.ExecutionRewound | None = None
    doubtful: bool = False
    """Some message was discarded or held back because the state looked older than it."""
    discards: list[tuple[str, str]] = field(default_factory=list)

    def log_discards(self, instance_id: str) -> None:
        for message_id, why in self.discards:
            _LOG.warning("discarding message %s for %r: %s", message_id, instance_id, why)


def _starts_a_new_instance(messages: list[ReceivedMessage]) -> bool:
    """Whether ``messages`` start an instance that has no history, as far as can be known
    without reading it: one client's start (no parent) of Generation 0, which a client sends
    only when it found no Instances row or drew a fresh id (a history never outlives its row:
    workers write the row after the history, purges delete it last), and every message
    received for the first time (a redelivered start may follow a crash after its commit).
    A wrong guess costs a conflict: a commit that read no history inserts the sentinel, never
    overwrites it, and the messages come back to an episode that reads the history."""
    starts = [
        event
        for m in messages
        if m.message is not None and isinstance(event := m.message.event, ev.ExecutionStarted)
    ]
    return (
        len(starts) == 1
        and starts[0].parent_instance is None
        and starts[0].generation == 0
        and all(m.dequeue_count <= 1 for m in messages)
    )


def _triage(
    instance_id: str, state: InstanceState, messages: list[ReceivedMessage], max_early_dequeues: int
) -> _Triage:
    """Sort messages into accepted / duplicate / stale / early, without I/O."""
    t = _Triage()
    accepted_ids: set[int] = set()

    def early(m: ReceivedMessage, why: str) -> None:
        t.doubtful = True
        if m.dequeue_count >= max_early_dequeues:
            t.discards.append((m.message_id, f"{why}, after {m.dequeue_count} dequeues"))
            t.delete.append(m.message_id)
        else:
            t.abandon.append(m.message_id)

    # Starts first: an event raised while a generation ended by continue-as-new can be in the
    # queue before the next generation's start, and belongs to that generation (#544).
    for m in sorted(messages, key=functools.partial(_batch_order, instance_id)):
        assert m.message is not None and m.message.task_message is not None
        event = m.message.event
        target_execution = m.message.task_message.orchestration_instance.execution_id
        if isinstance(event, ev.ExecutionStarted):
            execution = event.orchestration_instance.execution_id
            if execution == state.execution_id or (t.new_start and execution == _exec(t.new_start)):
                t.delete.append(m.message_id)  # a duplicate start (at-least-once delivery)
            elif _same_parent_call(event, state):
                t.delete.append(m.message_id)  # the parent's episode ran twice (a failed commit)
            elif t.new_start is None and (not state.history or state.finished):
                t.new_start = event
                t.delete.append(m.message_id)
            elif t.new_start is not None:
                t.abandon.append(m.message_id)  # one generation per episode; the next one later
            else:
                t.doubtful = True
                t.discards.append(
                    (
                        m.message_id,
                        f"start of execution {execution}: execution {state.execution_id} is still running",
                    )
                )
                t.delete.append(m.message_id)
            continue
        current = _exec(t.new_start) if t.new_start else state.execution_id
        if current is None:
            early(m, "no such instance (yet)")
            continue
        if (
            t.new_start is None
            and state.final_status is OrchestrationStatus.CONTINUED_AS_NEW
            and target_execution != current
        ):
            # For whichever generation is current, or for the next one (carried-over events):
            # the next generation's start was sent before this state's commit and is on its way.
            early(m, f"execution {current} continued as new and the next one has not started")
            continue
        if target_execution not in (None, current):
            t.doubtful = True  # an earlier generation's, unless the state is behind a continue-as-new
            t.delete.append(m.message_id)
            continue
        if isinstance(event, ev.ExecutionRewound):
            t.delete.append(m.message_id)
            if t.new_start is None and state.final_status is OrchestrationStatus.FAILED and t.rewind is None:
                t.rewind = event
            else:
                t.discards.append((m.message_id, "a rewind, but the instance is not failed"))
            continue
        if t.new_start is None and state.finished:
            t.delete.append(m.message_id)  # the instance has ended: nothing will consume it
            continue
        rid = _response_id(event)
        if rid is not None:
            if t.new_start is not None or rid not in state.scheduled:
                early(m, f"response to id {rid} arrived before its scheduling event was committed")
                continue
            if rid in state.answered or rid in accepted_ids:
                t.delete.append(m.message_id)  # a duplicate response
                continue
            again = state.rescheduled_at.get(rid)
            if again is not None and event.timestamp < again:
                t.delete.append(m.message_id)  # a duplicate answer to the attempt before a retry
                continue
            accepted_ids.add(rid)
        t.accepted.append(event)
        t.delete.append(m.message_id)
    return t


def _children_started(history: list[ev.HistoryEvent]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for event in history:
        if isinstance(event, ev.SubOrchestrationInstanceCreated):
            counts[event.event_id] = counts.get(event.event_id, 0) + 1
    return counts


_MAX_RETRIED_STARTS = 1000


def _retried_call(start: ev.ExecutionStarted, parent: ev.ParentInstance) -> bool:
    """A start whose execution id is derived for a later attempt of the same call: the parent
    retries it under its id (the durabletask SDK's retry policies), it is not a rerun."""
    parent_execution = parent.orchestration_instance.execution_id
    execution = start.orchestration_instance.execution_id
    return any(
        execution
        == derived_execution_id(parent_execution, sub_orchestration_call(n, parent.task_schedule_id))
        for n in range(1, _MAX_RETRIED_STARTS)
    )


def _same_parent_call(start: ev.ExecutionStarted, state: InstanceState) -> bool:
    """Whether ``start`` repeats the sub-orchestration call that started the current execution.

    A parent whose episode failed after sending (its history write failed) sends the start
    again on its rerun. durablehub derives the child's execution id from the episode, so that
    repeat is caught as a duplicate start already; a parent whose engine draws a fresh id per
    run (the reference's Guid.NewGuid, or durablehub before derived ids) sends another id, and
    restarting a finished child for it would run it twice. A terminated child may be started
    again by the same call (a rewind of its parent does so).
    """
    current, new = state.started, start.parent_instance
    if current is None or current.parent_instance is None or new is None:
        return False
    old = current.parent_instance
    return (
        old.orchestration_instance == new.orchestration_instance
        and old.task_schedule_id == new.task_schedule_id
        and state.final_status not in (OrchestrationStatus.TERMINATED, OrchestrationStatus.CANCELED)
        and not _retried_call(start, new)
    )


def _exec(started: ev.ExecutionStarted | None) -> str | None:
    return started.orchestration_instance.execution_id if started else None


def _batch_order(instance_id: str, m: ReceivedMessage) -> tuple[bool, bool, int, datetime, int]:
    """Starts first; then events the instance carried over to its next generation
    (continue_as_new with save_events), in the order it sent them: they were raised before
    whatever else reached the queue while that generation ran; then by arrival."""
    message = m.message
    event = message.event if message else None
    carried = (
        isinstance(event, ev.EventRaised)
        and message is not None
        and message.task_message is not None
        and message.task_message.orchestration_instance.execution_id is not None
        and message.sender is not None
        and message.sender.instance_id == instance_id
    )
    inserted, sequence = _arrival_order(m)
    return (
        not isinstance(event, ev.ExecutionStarted),
        not carried,
        sequence if carried else 0,
        inserted,
        sequence,
    )


def _arrival_order(m: ReceivedMessage) -> tuple[datetime, int]:
    inserted = m.inserted_on or datetime.min.replace(tzinfo=UTC)
    return (inserted, m.message.sequence_number if m.message else 0)
