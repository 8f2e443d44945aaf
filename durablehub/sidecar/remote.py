"""RemoteCode: the runtime's ``UserCode`` whose code runs in connected SDK workers.

An episode becomes an ``OrchestratorRequest`` (the whole stored history as ``pastEvents``: the
Python SDK does not stream history) and its ``OrchestratorResponse`` becomes the engine's
``EpisodeResult``; an activity becomes an ``ActivityRequest`` and its ``ActivityResponse`` a
``TaskCompleted`` or ``TaskFailed``. Everything else -- what the actions write and send, in
which order, under which ETag -- is the runtime's, exactly as for an in-process ``App``.

There is no deadline here: a worker that goes away gives its work back (``WorkDispatcher``),
and work waits while no worker is connected, its messages kept invisible by the runtime. Work
too large for a worker to receive (``WorkItemTooLarge``) fails once instead: the episode (the
instance fails), the activity (a ``TaskFailed``) or the entity operation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime

from durablehub.engine import history as ev
from durablehub.engine.actions import Action, CompleteOrchestration
from durablehub.engine.replay import EpisodeResult
from durablehub.engine.rewind import rewind_plan
from durablehub.entities.batch import OperationOutcome
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import OPERATION_EVENT, RequestMessage
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.hosting import EpisodeDone, EpisodeWork, RewoundEpisode, failed_episode
from durablehub.sidecar import translate as tr
from durablehub.sidecar.dispatch import WorkDispatcher, WorkItemTooLarge
from durablehub.sidecar.protocol import pb

__all__ = ["RemoteCode"]

_LOG = logging.getLogger("durablehub.sidecar")


class RemoteCode:
    def __init__(self, dispatcher: WorkDispatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.dispatcher = dispatcher
        self._loop = loop

    def entity_target(self, name: str) -> RemoteEntity:
        return RemoteEntity(self.dispatcher, self._loop)

    def close(self) -> None:
        pass

    async def _orchestrate(self, work: EpisodeWork) -> pb.OrchestratorResponse:
        started = work.started
        request = pb.OrchestratorRequest(
            instanceId=work.instance_id,
            executionId=tr.string_value(started.orchestration_instance.execution_id),
            pastEvents=[tr.event_to_proto(e) for e in work.past],
            newEvents=[tr.event_to_proto(e) for e in work.new_events],
            # The span id the task hub recorded: every dispatch (and the SDK's orchestration
            # span, ended by the last) uses it, whichever SDK worker runs the episode.
            orchestrationTraceContext=tr.orchestration_trace_to_proto(started.parent_trace_context),
        )
        return await self.dispatcher.submit(
            "orchestration", started.name, started.version, pb.WorkItem(orchestratorRequest=request)
        )

    async def run_episode(self, work: EpisodeWork) -> EpisodeDone:
        started = work.started
        try:
            response = await self._orchestrate(work)
        except WorkItemTooLarge as exc:
            _LOG.error("instance %r: %s", work.instance_id, exc)
            return EpisodeDone(result=failed_episode(exc, next_id=work.next_action_id))
        sender = tr.EntitySender(
            instance=started.orchestration_instance,
            now=work.new_events[0].timestamp,
            last_sent=_entity_labels(work.past),
        )
        try:
            actions = tuple(tr.action_from_proto(a, sender=sender) for a in response.actions)
            tr.check_action_ids(actions)
        except tr.TranslationError as exc:
            _LOG.error("instance %r: %s", work.instance_id, exc)
            return EpisodeDone(result=failed_episode(exc, next_id=work.next_action_id))
        return EpisodeDone(result=_episode_result(work, actions, tr.text(response, "customStatus")))

    async def rewind(self, work: EpisodeWork, *, now: datetime) -> RewoundEpisode:
        """The SDK rewinds in two steps: given the failed history and an ``executionRewound``,
        it answers with the history to keep (``rewindOrchestration``); replayed on that, it
        schedules again what failed. durablehub keeps every row: the events the SDK dropped
        become ``Rewound:`` rows (``durablehub.engine.rewind``), and calls left unanswered are
        sent again as for any rewind."""
        try:
            response = await self._orchestrate(work)
        except WorkItemTooLarge as exc:
            return _rewind_failed(work, exc)
        kept = next(
            (a.rewindOrchestration for a in response.actions if a.HasField("rewindOrchestration")), None
        )
        if kept is None:
            return _rewind_failed(
                work,
                tr.TranslationError("the SDK worker answered a rewind without a rewindOrchestration action"),
            )
        forgotten = _dropped(work.past, list(kept.newHistory))
        failed_children = {
            work.past[i].task_scheduled_id  # type: ignore[attr-defined]
            for i in forgotten
            if isinstance(work.past[i], ev.SubOrchestrationInstanceFailed)
        }
        plan = rewind_plan(work.past, forgotten, failed_children=failed_children, now=now)
        rewound = dataclasses.replace(work, past=plan.history, session=None)
        return RewoundEpisode(plan=plan, done=await self.run_episode(rewound))

    async def run_activity(
        self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance
    ) -> ev.HistoryEvent:
        request = pb.ActivityRequest(
            name=scheduled.name,
            version=tr.string_value(scheduled.version),
            input=tr.string_value(scheduled.input),
            orchestrationInstance=tr.instance_to_proto(target),
            taskId=scheduled.event_id,
            parentTraceContext=tr.trace_to_proto(scheduled.parent_trace_context),
            tags=scheduled.tags or {},
        )
        try:
            response: pb.ActivityResponse = await self.dispatcher.submit(
                "activity", scheduled.name, scheduled.version, pb.WorkItem(activityRequest=request)
            )
        except WorkItemTooLarge as exc:  # the activity fails once, as one that raised would
            _LOG.error("activity %r of %r: %s", scheduled.name, target.instance_id, exc)
            failure = FailureDetails.from_exception(exc)
            return ev.TaskFailed(
                task_scheduled_id=scheduled.event_id, reason=failure.message, failure_details=failure
            )
        if response.HasField("failureDetails"):
            details = tr.failure_from_proto(response.failureDetails)
            return ev.TaskFailed(
                task_scheduled_id=scheduled.event_id,
                reason=details.message,
                details=details.stack_trace,
                failure_details=details,
            )
        return ev.TaskCompleted(task_scheduled_id=scheduled.event_id, result=tr.text(response, "result"))


class RemoteEntity:
    """An entity whose operations run in SDK workers, one operation per work item (so the
    runtime's batch keeps its order, locks and de-duplication, and applies each result as it
    comes). Called on a user-code thread: it waits there for the answer."""

    def __init__(self, dispatcher: WorkDispatcher, loop: asyncio.AbstractEventLoop) -> None:
        self._dispatcher = dispatcher
        self._loop = loop

    def run_operation(
        self,
        entity_id: EntityInstanceId,
        operation: str,
        request_id: str,
        state: str | None,
        input: str | None,
    ) -> OperationOutcome:
        request = tr.entity_batch_request(entity_id, operation, request_id, state, input)
        submit = self._dispatcher.submit("entity", entity_id.entity, None, pb.WorkItem(entityRequest=request))
        try:
            answer: pb.EntityBatchResult = asyncio.run_coroutine_threadsafe(submit, self._loop).result()
        except WorkItemTooLarge as exc:
            _LOG.error("entity %s, operation %r: %s", entity_id, operation, exc)
            return OperationOutcome(failure=FailureDetails.from_exception(exc))
        try:
            return tr.operation_outcome(answer)
        except tr.TranslationError as exc:  # the operation fails once, as one that raised would
            _LOG.error("entity %s, operation %r: %s", entity_id, operation, exc)
            return OperationOutcome(failure=FailureDetails.from_exception(exc))


def _rewind_failed(work: EpisodeWork, error: Exception) -> RewoundEpisode:
    _LOG.error("instance %r: %s", work.instance_id, error)
    return RewoundEpisode(
        plan=None, done=EpisodeDone(result=failed_episode(error, next_id=work.next_action_id))
    )


def _dropped(past: Sequence[ev.HistoryEvent], kept: Sequence[pb.HistoryEvent]) -> set[int]:
    """Positions of ``past`` that the SDK's rewritten history left out (it keeps the others in
    order, the execution id of the start aside)."""
    dropped: set[int] = set()
    j = 0
    for i, event in enumerate(past):
        sent = tr.event_to_proto(event)
        if j < len(kept) and _same_event(sent, kept[j]):
            j += 1
        else:
            dropped.add(i)
    return dropped


def _same_event(a: pb.HistoryEvent, b: pb.HistoryEvent) -> bool:
    return (
        a.WhichOneof("eventType") == b.WhichOneof("eventType")
        and a.eventId == b.eventId
        and a.timestamp == b.timestamp
    )


def _entity_labels(history: Sequence[ev.HistoryEvent]) -> dict[str, datetime]:
    """The label of the last request this execution sent to each entity (kept in order)."""
    labels: dict[str, datetime] = {}
    for event in history:
        if isinstance(event, ev.EventSent) and event.name == OPERATION_EVENT:
            try:
                request = RequestMessage.from_json(event.input)
            except ValueError:
                continue
            previous = labels.get(event.instance_id)
            if previous is None or request.timestamp > previous:
                labels[event.instance_id] = request.timestamp
    return labels


def _episode_result(work: EpisodeWork, actions: Sequence[Action], custom_status: str | None) -> EpisodeResult:
    """The engine's view of an SDK's answer: what the executor would have said of itself."""
    history = [*work.past, *work.new_events]
    completion = next((a for a in actions if isinstance(a, CompleteOrchestration)), None)
    if completion is not None:
        # The completion is last, as the engine orders it; actions after it are not performed.
        actions = [*(a for a in actions if not isinstance(a, CompleteOrchestration)), completion]
        if completion.status is OrchestrationStatus.TERMINATED and _recursive_termination(work.new_events):
            children = _running_children(history)
            completion = CompleteOrchestration(
                id=completion.id,
                status=completion.status,
                result=completion.result,
                terminate_children=children,
            )
            actions = [*actions[:-1], completion]
    ended = completion is not None or any(
        isinstance(e, (ev.ExecutionCompleted, ev.ContinueAsNew)) for e in history
    )
    return EpisodeResult(
        actions=tuple(actions),
        custom_status=custom_status,
        is_complete=ended,
        is_suspended=not ended and _suspended(history),
    )


def _recursive_termination(events: Sequence[ev.HistoryEvent]) -> bool:
    return any(isinstance(e, ev.ExecutionTerminated) and e.recurse for e in events)


def _running_children(history: Sequence[ev.HistoryEvent]) -> tuple[str, ...]:
    created = {
        e.event_id: e.instance_id for e in history if isinstance(e, ev.SubOrchestrationInstanceCreated)
    }
    for e in history:
        if isinstance(e, (ev.SubOrchestrationInstanceCompleted, ev.SubOrchestrationInstanceFailed)):
            created.pop(e.task_scheduled_id, None)
    return tuple(created[i] for i in sorted(created))


def _suspended(history: Sequence[ev.HistoryEvent]) -> bool:
    suspended = False
    for e in history:
        if isinstance(e, ev.ExecutionSuspended):
            suspended = True
        elif isinstance(e, ev.ExecutionResumed):
            suspended = False
    return suspended
