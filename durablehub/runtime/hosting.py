"""Where user code runs: the runtime's one seam between the task hub and orchestrator,
activity (and, later, entity) code.

The runtime -- partitions, leases, triage of messages, commit order, timers, poison, the
cache -- is the same whoever runs the code. What differs is only this step: given an episode
(the stored history and the new events), produce the orchestrator's actions; given a
``TaskScheduled``, produce its ``TaskCompleted`` or ``TaskFailed``. ``InProcessCode`` runs a
durablehub ``App`` in this process (on user-code threads, under deadlines, with a warm
executor kept between episodes); the sidecar's remote code streams the same work to a
connected Durable Task SDK worker (``durablehub.sidecar.dispatch``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from durablehub.app import App, UnknownVersionError
from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration
from durablehub.engine.codec import JSON_CODEC, SizeLimitedCodec, check_size
from durablehub.engine.replay import EpisodeResult, OrchestrationExecutor
from durablehub.engine.rewind import RewindPlan
from durablehub.engine.rewind import rewind as rewind_history
from durablehub.errors import ActivityTimeoutError, OrchestratorTimeoutError
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.threads import UserCodeThreads
from durablehub.runtime.unknown import UnknownFunctions, UnknownFunctionStrategy
from durablehub.runtime.versions import EpisodeRejected, VersionGate
from durablehub.task import ActivityContext
from durablehub.taskhub.offload import async_in_thread, async_offload
from durablehub.telemetry import tracing

__all__ = ["EpisodeDone", "EpisodeWork", "InProcessCode", "RewoundEpisode", "UserCode", "failed_episode"]

_LOG = logging.getLogger("durablehub.worker")


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeWork:
    """One episode to run: ``past`` is the stored history of the current execution,
    ``new_events`` start with ``OrchestratorStarted`` (then the start, if new, and the
    accepted messages). ``session`` is what the code host kept from this instance's last
    episode (a warm executor), ``None`` for a cold start."""

    instance_id: str
    started: ev.ExecutionStarted
    past: Sequence[ev.HistoryEvent]
    new_events: Sequence[ev.HistoryEvent]
    next_action_id: int
    session: object | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeDone:
    """The episode's result; ``session`` is kept with the instance for its next episode.
    ``timed_out``: the code did not return in time (its custom status is unknown)."""

    result: EpisodeResult
    session: object | None = None
    timed_out: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RewoundEpisode:
    """A rewind (``durablehub.engine.rewind``) and the episode that follows it; ``plan`` is
    None when the rewind's replay did not return in time (``done`` then fails the instance)."""

    plan: RewindPlan | None
    done: EpisodeDone


class UserCode(Protocol):
    """Runs user code for the runtime; every method may be cancelled (a partition's stop)."""

    async def run_episode(self, work: EpisodeWork) -> EpisodeDone:
        """The actions of one episode. Raising leaves the episode's messages to be retried."""
        ...

    async def rewind(self, work: EpisodeWork, *, now: datetime) -> RewoundEpisode:
        """Rewind a failed instance (``work.past``) and run the episode ``work.new_events``."""
        ...

    async def run_activity(
        self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance
    ) -> ev.HistoryEvent:
        """``TaskCompleted`` or ``TaskFailed`` for ``scheduled``. Raising hands the work item back."""
        ...

    def entity_target(self, name: str) -> Any:
        """The code of entity ``name`` for ``run_entity_batch`` (a registered class or function,
        or ``RemoteOperations``). Raises LookupError (naming what exists) if there is none."""
        ...

    def close(self) -> None: ...


def failed_episode(error: Exception, *, next_id: int) -> EpisodeResult:
    """An episode that ends the orchestration as FAILED with ``error`` and no other action."""
    completion = CompleteOrchestration(
        id=next_id, status=OrchestrationStatus.FAILED, failure_details=FailureDetails.from_exception(error)
    )
    return EpisodeResult(actions=(completion,), custom_status=None, is_complete=True, is_suspended=False)


def _decode_input(name: str, text: str | None) -> Any:
    return JSON_CODEC.decode(text, what=f"input of activity {name!r}")


def _encode_result(name: str, result: Any, limit: int | None) -> str | None:
    what = f"result of activity {name!r}"
    # Checked here: a larger result would become a message no worker may read back.
    return check_size(JSON_CODEC.encode(result, what=what), what=what, max_bytes=limit)


def _run_sync(
    fn: Callable[..., Any], ctx: ActivityContext, name: str, text: str | None, limit: int | None
) -> str | None:
    """A plain activity with its JSON, all on its own thread."""
    return _encode_result(name, fn(ctx, _decode_input(name, text)), limit)


def _missing_orchestrator(message: str) -> Callable[..., Any]:
    def orchestrator(ctx: Any, _input: Any) -> Any:
        raise LookupError(message)

    return orchestrator


class InProcessCode:
    """A durablehub ``App``'s code, run in this process.

    Orchestrator code runs on ``UserCodeThreads``, never on the loop. An episode whose code has
    not returned after ``orchestrator_timeout_seconds`` fails its instance with
    ``OrchestratorTimeoutError`` (as Azure Functions fails an orchestrator that exceeds its
    function timeout; retrying would only block again); its thread is left to finish alone.
    Activities get ``activity_timeout_seconds``: an async one is cancelled, a blocked thread is
    left behind.
    """

    def __init__(
        self,
        app: App,
        options: WorkerOptions,
        *,
        max_payload_bytes: int | None = None,
        task_hub: str | None = None,
    ) -> None:
        self.app = app
        self._options = options
        # Names the App lacks: failed or handed back (DURABLEHUB_UNKNOWN_FUNCTION_STRATEGY).
        self.unknown = UnknownFunctions(options.unknown_function_strategy, task_hub=task_hub)
        self._max_payload_bytes = max_payload_bytes  # an activity's result above it fails its task
        self._codec = SizeLimitedCodec(JSON_CODEC, max_payload_bytes)  # and an orchestrator's payloads
        self.threads = UserCodeThreads("durablehub-orchestrator")  # entity batches share them
        self._activity_threads = UserCodeThreads("durablehub-activity")

    def entity_target(self, name: str) -> Any:
        try:
            return self.app.get_entity(name).target
        except LookupError as exc:
            if self.unknown.met("entity", name):
                raise EpisodeRejected(str(exc), said=True) from None
            raise

    def rejects_activity(self, name: str) -> bool:
        """True if the App has no activity ``name`` and its work items are to be handed back."""
        if self.unknown.strategy is not UnknownFunctionStrategy.REJECT:
            return False  # it runs, and fails naming what is registered
        try:
            self.app.get_activity(name)
        except LookupError:
            return self.unknown.met("activity", name)
        return False

    def close(self) -> None:
        self.threads.close()
        self._activity_threads.close()

    async def run_episode(self, work: EpisodeWork) -> EpisodeDone:
        executor = work.session
        if isinstance(executor, OrchestrationExecutor):
            call: Callable[[], EpisodeResult] = functools.partial(executor.resume, list(work.new_events))
        else:
            try:
                executor = self._executor(work.started)
            except UnknownVersionError as exc:  # the worker's failure strategy decides
                policy = VersionGate(self._options.versioning, base_delay_seconds=0)
                return EpisodeDone(result=policy.on_mismatch(str(exc), next_id=work.next_action_id))
            call = functools.partial(executor.execute, list(work.past), list(work.new_events))
        return await self._run_orchestrator(work, executor, call)

    def _executor(self, started: ev.ExecutionStarted) -> OrchestrationExecutor:
        return OrchestrationExecutor(
            self._orchestrator_fn(started.name, started.version),
            codec=self._codec,
            default_version=self._options.default_version or None,
        )

    async def rewind(self, work: EpisodeWork, *, now: datetime) -> RewoundEpisode:
        try:
            executor = self._executor(work.started)
        except UnknownVersionError as exc:  # REJECT raises; FAIL: the instance stays failed
            policy = VersionGate(self._options.versioning, base_delay_seconds=0)
            failed = policy.on_mismatch(str(exc), next_id=work.next_action_id)
            return RewoundEpisode(plan=None, done=EpisodeDone(result=failed))
        deadline = self._options.orchestrator_timeout_seconds
        replay = functools.partial(rewind_history, executor, list(work.past), now=now)
        try:
            plan = await asyncio.wait_for(self.threads.run(replay), timeout=deadline)
        except TimeoutError:  # the replay blocked in orchestrator code: the instance stays failed
            error = OrchestratorTimeoutError(work.instance_id, work.started.name, deadline)
            _LOG.error("rewinding %r: %s", work.instance_id, error)
            failed = failed_episode(error, next_id=work.next_action_id)
            return RewoundEpisode(plan=None, done=EpisodeDone(result=failed, timed_out=False))
        call = functools.partial(executor.resume, list(work.new_events))
        return RewoundEpisode(plan=plan, done=await self._run_orchestrator(work, executor, call))

    async def _run_orchestrator(
        self, work: EpisodeWork, executor: OrchestrationExecutor, call: Callable[[], EpisodeResult]
    ) -> EpisodeDone:
        deadline = self._options.orchestrator_timeout_seconds
        try:
            result = await asyncio.wait_for(self.threads.run(call), timeout=deadline)
        except TimeoutError:
            # The thread cannot be stopped and the executor is mid-episode: neither is used again.
            error = OrchestratorTimeoutError(work.instance_id, work.started.name, deadline)
            _LOG.error("%s", error)
            return EpisodeDone(result=failed_episode(error, next_id=work.next_action_id), timed_out=True)
        return EpisodeDone(result=result, session=executor)

    def _orchestrator_fn(self, name: str, version: str | None) -> Callable[..., Any]:
        try:
            return self.app.get_orchestrator(name, version).fn
        except UnknownVersionError:
            raise
        except LookupError as exc:
            if self.unknown.met("orchestrator", name):
                raise EpisodeRejected(str(exc), said=True) from None
            return _missing_orchestrator(str(exc))

    async def run_activity(
        self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance
    ) -> ev.HistoryEvent:
        # The activity's server span is current while its code runs (on its thread too), so
        # that instrumented HTTP, storage or database calls nest under it.
        with tracing.activity_span(scheduled, target.instance_id) as span:
            response = await self._run_activity(scheduled, target)
            tracing.activity_outcome(span, response)
        return response

    async def _run_activity(
        self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance
    ) -> ev.HistoryEvent:
        ctx = ActivityContext(
            orchestration_id=target.instance_id, task_id=scheduled.event_id, task_name=scheduled.name
        )
        name, text, limit = scheduled.name, scheduled.input, self._max_payload_bytes
        try:
            try:
                registered = self.app.get_activity(name)
            except LookupError:
                self.unknown.met("activity", name)  # said once; the task fails naming what exists
                raise
            # JSON of a large payload would stall the loop (and lease renewal): it runs on the
            # activity's thread, or on the codec pool for an async activity.
            if registered.is_async:
                value = await async_offload(_decode_input, len(text or ""), name, text)
                run: Awaitable[Any] = registered.fn(ctx, value)
            else:
                run = self._activity_threads.run(
                    functools.partial(
                        contextvars.copy_context().run, _run_sync, registered.fn, ctx, name, text, limit
                    )
                )
            deadline = self._options.activity_timeout_seconds
            try:
                async with asyncio.timeout(deadline) as timer:
                    result: Any = await run
            except TimeoutError:
                if not timer.expired():
                    raise  # the activity's own timeout, not ours
                raise ActivityTimeoutError(name, target.instance_id, deadline) from None
            encoded = (
                await async_in_thread(_encode_result, name, result, limit) if registered.is_async else result
            )
        except Exception as exc:  # the orchestration decides what a failure means
            details = FailureDetails.from_exception(exc)
            return ev.TaskFailed(
                task_scheduled_id=scheduled.event_id,
                reason=str(exc),
                details=details.stack_trace,
                failure_details=details,
            )
        return ev.TaskCompleted(task_scheduled_id=scheduled.event_id, result=encoded)
