"""An in-memory runtime for engine tests: no storage, a virtual clock.

It does what the storage runtime will do, without queues or tables: it groups messages per
instance into episodes, feeds them to a cached ``OrchestrationExecutor``, appends the new events
and ``plan_episode``'s history, and delivers ``plan_episode``'s messages (activities run inline,
timers wait on the virtual clock). After every episode it also replays the stored history into a
fresh executor and asserts that the cold result equals the warm one: the cache invariant.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC
from durablehub.engine.episode import OutboundMessage, plan_episode
from durablehub.engine.replay import EpisodeResult, OrchestrationExecutor
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.task import ActivityContext
from durablehub.testing.history import T0


@dataclass
class Instance:
    instance_id: str
    started: ev.ExecutionStarted
    executor: OrchestrationExecutor
    history: list[ev.HistoryEvent] = field(default_factory=list)
    status: OrchestrationStatus = OrchestrationStatus.RUNNING
    output: str | None = None
    failure: FailureDetails | None = None
    custom_status: str | None = None
    episodes: int = 0
    generations: int = 1

    @property
    def execution_id(self) -> str | None:
        return self.started.orchestration_instance.execution_id


@dataclass(order=True)
class _Queued:
    visible_at: datetime
    seq: int
    message: OutboundMessage = field(compare=False)


class Simulation:
    def __init__(self, app: App, *, start: datetime = T0, check_cold_replay: bool = True) -> None:
        self.app = app
        self.now = start
        self.check_cold_replay = check_cold_replay
        self.instances: dict[str, Instance] = {}
        self.activity_calls: list[tuple[str, Any]] = []
        self.dropped: list[OutboundMessage] = []
        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        self._execution_ids = (f"exec-{n}" for n in itertools.count(1))

    # --- client side ---

    def start(self, name: str, input: Any = None, *, instance_id: str = "root") -> str:
        instance = ev.OrchestrationInstance(instance_id=instance_id, execution_id=next(self._execution_ids))
        event = ev.ExecutionStarted(
            timestamp=self.now, orchestration_instance=instance, name=name, input=JSON_CODEC.encode(input)
        )
        self._enqueue(
            OutboundMessage(
                target_instance_id=instance_id, target_execution_id=instance.execution_id, event=event
            )
        )
        return instance_id

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        self._control(
            instance_id, ev.EventRaised(timestamp=self.now, name=name, input=JSON_CODEC.encode(data))
        )

    def terminate(self, instance_id: str, reason: Any = None, *, recurse: bool = False) -> None:
        self._control(
            instance_id,
            ev.ExecutionTerminated(
                timestamp=self.now, input=JSON_CODEC.encode(reason), recurse=recurse or None
            ),
        )

    def suspend(self, instance_id: str) -> None:
        self._control(instance_id, ev.ExecutionSuspended(timestamp=self.now))

    def resume(self, instance_id: str) -> None:
        self._control(instance_id, ev.ExecutionResumed(timestamp=self.now))

    def output(self, instance_id: str = "root") -> Any:
        return JSON_CODEC.decode(self.instances[instance_id].output)

    def status(self, instance_id: str = "root") -> OrchestrationStatus:
        return self.instances[instance_id].status

    # --- the runtime loop ---

    def run(self, *, until: datetime | None = None, max_steps: int = 100_000) -> None:
        """Deliver messages until none is left (or only timers later than ``until``)."""
        for _ in range(max_steps):
            if not self._queue:
                return
            self._queue.sort()
            head = self._queue[0]
            if head.visible_at > self.now:
                if until is not None and head.visible_at > until:
                    self.now = until
                    return
                self.now = head.visible_at  # nothing else to do: let time pass
            self._step()
        raise AssertionError("simulation did not settle")

    def _step(self) -> None:
        ready = [q for q in self._queue if q.visible_at <= self.now]
        first = ready[0].message
        if first.to_work_items:
            self._queue.remove(ready[0])
            self._run_activity(first)
            return
        batch = [
            q
            for q in ready
            if not q.message.to_work_items and q.message.target_instance_id == first.target_instance_id
        ]
        if isinstance(first.event, ev.ExecutionStarted):
            # A new generation starts alone with the messages addressed to it.
            batch = [
                q
                for q in batch
                if q is ready[0]
                or (
                    q.message.target_execution_id == first.target_execution_id
                    and not isinstance(q.message.event, ev.ExecutionStarted)
                )
            ]
        else:
            cut = next(
                (i for i, q in enumerate(batch) if isinstance(q.message.event, ev.ExecutionStarted)), None
            )
            batch = batch[:cut]
        for q in batch:
            self._queue.remove(q)
        self._episode(first.target_instance_id, [q.message for q in batch])

    def _episode(self, instance_id: str, messages: list[OutboundMessage]) -> None:
        instance = self.instances.get(instance_id)
        head = messages[0].event
        if isinstance(head, ev.ExecutionStarted):
            if instance is not None and instance.execution_id == head.orchestration_instance.execution_id:
                self.dropped.extend(messages)  # a duplicate start
                return
            generations = instance.generations + 1 if instance is not None else 1
            fn = self.app.get_orchestrator(head.name).fn
            instance = Instance(instance_id, head, OrchestrationExecutor(fn), generations=generations)
            self.instances[instance_id] = instance
        if instance is None or instance.status.is_terminal:
            self.dropped.extend(messages)
            return
        events: list[ev.HistoryEvent] = []
        for message in messages:
            if message.target_execution_id not in (None, instance.execution_id):
                self.dropped.append(message)  # addressed to an older generation
            else:
                events.append(message.event)
        if not events:
            return
        new_events = [ev.OrchestratorStarted(timestamp=self.now), *events]
        past = list(instance.history)
        result = instance.executor.resume(new_events)
        if self.check_cold_replay:
            fn = self.app.get_orchestrator(instance.started.name).fn
            cold = OrchestrationExecutor(fn).execute(past, new_events)
            assert _comparable(cold) == _comparable(result), (
                f"cold replay differs at episode {instance.episodes}"
            )
        plan = plan_episode(
            result, started=instance.started, now=self.now, new_execution_id=lambda: next(self._execution_ids)
        )
        instance.history.extend(new_events)
        instance.history.extend(plan.history)
        instance.episodes += 1
        instance.status = plan.runtime_status
        instance.custom_status = result.custom_status
        if plan.completion is not None:
            instance.output = plan.completion.result
            instance.failure = plan.completion.failure_details
        for message in plan.messages:
            self._enqueue(message)

    def _run_activity(self, message: OutboundMessage) -> None:
        scheduled = message.event
        assert isinstance(scheduled, ev.TaskScheduled)
        registered = self.app.get_activity(scheduled.name)
        ctx = ActivityContext(
            orchestration_id=message.target_instance_id, task_id=scheduled.event_id, task_name=scheduled.name
        )
        value = JSON_CODEC.decode(scheduled.input)
        self.activity_calls.append((scheduled.name, value))
        reply: ev.HistoryEvent
        try:
            out = asyncio.run(registered.fn(ctx, value)) if registered.is_async else registered.fn(ctx, value)
            reply = ev.TaskCompleted(
                timestamp=self.now, task_scheduled_id=scheduled.event_id, result=JSON_CODEC.encode(out)
            )
        except Exception as exc:
            reply = ev.TaskFailed(
                timestamp=self.now,
                task_scheduled_id=scheduled.event_id,
                reason=str(exc),
                failure_details=FailureDetails.from_exception(exc),
            )
        self._enqueue(
            OutboundMessage(
                target_instance_id=message.target_instance_id,
                target_execution_id=message.target_execution_id,
                event=reply,
            )
        )

    def _control(self, instance_id: str, event: ev.HistoryEvent) -> None:
        self._enqueue(OutboundMessage(target_instance_id=instance_id, target_execution_id=None, event=event))

    def _enqueue(self, message: OutboundMessage) -> None:
        visible = message.visible_at if message.visible_at is not None else self.now
        self._queue.append(_Queued(max(visible, self.now), next(self._seq), message))

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _comparable(result: EpisodeResult) -> EpisodeResult:
    # Failure stack traces differ between a warm and a cold run only by frame layout.
    completion = result.completion
    if completion is None or completion.failure_details is None:
        return result
    details = replace(completion.failure_details, stack_trace=None, inner_failure=None)
    return replace(result, actions=(*result.actions[:-1], replace(completion, failure_details=details)))


class Driver:
    """One warm executor fed hand-written episodes, its history kept as the runtime would.

    Every episode is also replayed cold from the stored history; the results must be equal.
    """

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.executor = OrchestrationExecutor(orchestrator)
        self.history: list[ev.HistoryEvent] = []
        self.started: ev.ExecutionStarted | None = None
        self._execution_ids = (f"exec-{n}" for n in itertools.count(1))

    def episode(self, *events: ev.HistoryEvent, at: datetime = T0) -> EpisodeResult:
        new_events = [ev.OrchestratorStarted(timestamp=at), *events]
        if self.started is None:
            self.started = next(e for e in events if isinstance(e, ev.ExecutionStarted))
        result = self.executor.resume(new_events)
        cold = OrchestrationExecutor(self.orchestrator).execute(list(self.history), new_events)
        assert _comparable(cold) == _comparable(result), "cold replay differs from the warm executor"
        plan = plan_episode(
            result, started=self.started, now=at, new_execution_id=lambda: next(self._execution_ids)
        )
        self.history.extend(new_events)
        self.history.extend(plan.history)
        return result
