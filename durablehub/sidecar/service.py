"""SidecarService: ``TaskHubSidecarService`` on a durablehub task hub (grpc.aio).

Client RPCs go through ``AsyncDurableClient`` (the same checks and storage writes as any
durablehub client); worker RPCs go to the hub's ``WorkDispatcher``. Payloads are stored as
the SDK sent them (JSON by default; a custom converter's text or a large-payload reference).
durablehub's errors become the codes the SDKs expect: NOT_FOUND, ALREADY_EXISTS,
FAILED_PRECONDITION, INVALID_ARGUMENT. An RPC not served here is answered UNIMPLEMENTED at
once by the generated base class.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from google.protobuf import empty_pb2, wrappers_pb2

from durablehub import _client_core as core
from durablehub.async_client import AsyncDurableClient
from durablehub.engine.codec import JsonText
from durablehub.entities.metadata import EntityQuery
from durablehub.errors import (
    OrchestrationAlreadyExistsError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
    PayloadError,
)
from durablehub.models import OrchestrationStatus
from durablehub.sidecar import translate as tr
from durablehub.sidecar.dispatch import StaleCompletionError, StreamDropped, WorkDispatcher
from durablehub.sidecar.limits import SidecarLimits
from durablehub.sidecar.protocol import grpc, pb, stubs
from durablehub.sidecar.waits import InstanceWaits, WaitTimedOut
from durablehub.state import OrchestrationIdReusePolicy, OrchestrationQuery, OrchestrationState, PurgeResult
from durablehub.telemetry import tracing

__all__ = ["HubRuntime", "SidecarService"]

_LOG = logging.getLogger("durablehub.sidecar")
_HEALTH_PING_SECONDS = 30.0  # the Python SDK calls a stream silent after 120 s without a message
_DROP_GRACE_SECONDS = 5.0  # a dropped stream's RPC must end by then, or it is cancelled
_DEADLINE_MARGIN = 0.25  # s: answer a long poll before the caller's deadline, not after it
_HISTORY_CHUNK = 100  # events per HistoryChunk
_FINISHED = [s for s in OrchestrationStatus if s.is_terminal]
_KEY_SEPARATOR = "|"

T = TypeVar("T")


class HubRuntime(Protocol):
    """What the service needs of one task hub: a client and the dispatcher of its workers."""

    client: AsyncDurableClient
    dispatcher: WorkDispatcher


def _payload(text: str | None) -> JsonText | None:
    """An SDK's payload, kept as the text it sent (None for none)."""
    return None if text is None or text == "" else JsonText(text)


async def _answer(context: grpc.aio.ServicerContext, call: Awaitable[T]) -> T:
    """Await ``call``; durablehub's errors abort the RPC with the code the SDKs expect."""
    try:
        return await call
    except OrchestrationNotFoundError as exc:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except OrchestrationAlreadyExistsError as exc:
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    except OrchestrationStateError as exc:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except StaleCompletionError as exc:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"completion token {exc} is unknown or stale: "
            "the work item was withdrawn or given to another worker",
        )
    except (PayloadError, ValueError, TypeError, tr.TranslationError) as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    raise AssertionError("unreachable: abort raises")


class SidecarService(stubs.TaskHubSidecarServiceServicer):
    def __init__(
        self,
        hub_for: Callable[[grpc.aio.ServicerContext], Awaitable[HubRuntime]],
        limits: SidecarLimits | None = None,
    ) -> None:
        self._hub_for = hub_for
        self._limits = limits or SidecarLimits()
        self._waits: weakref.WeakKeyDictionary[AsyncDurableClient, InstanceWaits] = (
            weakref.WeakKeyDictionary()
        )

    async def _client(self, context: grpc.aio.ServicerContext) -> AsyncDurableClient:
        return (await self._hub_for(context)).client

    def _waits_of(self, client: AsyncDurableClient) -> InstanceWaits:
        waits = self._waits.get(client)
        if waits is None:

            async def read(instance_id: str) -> OrchestrationState | None:
                return await client.get_orchestration_state(instance_id, fetch_payloads=False)

            waits = self._waits[client] = InstanceWaits(
                read, missing_poll=self._limits.wait_missing_poll_seconds
            )
        return waits

    # ------------------------------------------------------------------------ workers

    async def Hello(self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        await self._hub_for(context)  # an unknown or invalid hub fails the worker's first call
        return empty_pb2.Empty()

    async def GetWorkItems(
        self, request: pb.GetWorkItemsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WorkItem]:
        dispatcher = (await self._hub_for(context)).dispatcher
        stream = dispatcher.connect(request)
        task = asyncio.current_task()
        if task is not None:

            def end() -> None:
                # Dropped: ``next`` raises StreamDropped and the RPC ends UNAVAILABLE. If the RPC
                # is stuck in a write instead, cancel it (the caller then learns nothing).
                def cancel() -> None:
                    if not task.done():
                        task.cancel()

                asyncio.get_running_loop().call_later(_DROP_GRACE_SECONDS, cancel)

            stream.on_drop = end
        try:
            while True:
                try:
                    item = await stream.next(timeout=_HEALTH_PING_SECONDS)
                except StreamDropped as exc:  # the SDKs reconnect at once on UNAVAILABLE
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"work-item stream dropped: {exc}")
                yield item if item is not None else pb.WorkItem(healthPing=pb.HealthPing())
        finally:  # the worker went away (or the server stops): its work goes elsewhere
            dispatcher.disconnect(stream)

    async def CompleteOrchestratorTask(
        self, request: pb.OrchestratorResponse, context: grpc.aio.ServicerContext
    ) -> pb.CompleteTaskResponse:
        if request.isPartial:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "chunked orchestrator responses are not served yet"
            )
        await self._complete(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    async def CompleteActivityTask(
        self, request: pb.ActivityResponse, context: grpc.aio.ServicerContext
    ) -> pb.CompleteTaskResponse:
        await self._complete(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    async def _complete(self, context: grpc.aio.ServicerContext, token: str, answer: Any) -> None:
        dispatcher = (await self._hub_for(context)).dispatcher

        async def complete() -> None:
            dispatcher.complete(token, answer)

        await _answer(context, complete())

    async def AbandonTaskOrchestratorWorkItem(
        self, request: pb.AbandonOrchestrationTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.AbandonOrchestrationTaskResponse:
        await self._abandon(context, request.completionToken)
        return pb.AbandonOrchestrationTaskResponse()

    async def AbandonTaskActivityWorkItem(
        self, request: pb.AbandonActivityTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.AbandonActivityTaskResponse:
        await self._abandon(context, request.completionToken)
        return pb.AbandonActivityTaskResponse()

    async def _abandon(self, context: grpc.aio.ServicerContext, token: str) -> None:
        dispatcher = (await self._hub_for(context)).dispatcher

        async def abandon() -> None:
            dispatcher.abandon(token)

        await _answer(context, abandon())

    # ------------------------------------------------------------------------ clients

    async def StartInstance(
        self, request: pb.CreateInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateInstanceResponse:
        client = await self._client(context)

        async def start() -> str:
            replaceable = frozenset(
                tr.status_from_proto(s) for s in request.orchestrationIdReusePolicy.replaceableStatus
            )
            # The SDK client made the create_orchestration span: its context, not a second span.
            with tracing.forwarding(tr.trace_from_proto(request)):
                return await client.schedule_new_orchestration(
                    request.name,
                    input=_payload(tr.text(request, "input")),
                    instance_id=request.instanceId or None,
                    start_at=tr.to_datetime(request.scheduledStartTimestamp)
                    if request.HasField("scheduledStartTimestamp")
                    else None,
                    # The SDKs' backends refuse an existing id unless the policy names its status.
                    reuse_id_policy=OrchestrationIdReusePolicy(replaceable_statuses=replaceable),
                    tags=dict(request.tags) or None,
                    version=tr.text(request, "version"),
                )

        instance_id = await _answer(context, start())
        self._waits_of(client).poke(instance_id)  # its waiters read it now, not after their back-off
        return pb.CreateInstanceResponse(instanceId=instance_id)

    async def GetInstance(
        self, request: pb.GetInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInstanceResponse:
        client = await self._client(context)
        state = await _answer(
            context,
            client.get_orchestration_state(request.instanceId, fetch_payloads=request.getInputsAndOutputs),
        )
        if state is None:
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(
            exists=True, orchestrationState=tr.state_to_proto(state, payloads=request.getInputsAndOutputs)
        )

    async def WaitForInstanceStart(
        self, request: pb.GetInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInstanceResponse:
        return await self._wait(request, context, core.is_started, "start")

    async def WaitForInstanceCompletion(
        self, request: pb.GetInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInstanceResponse:
        return await self._wait(request, context, core.is_complete, "complete")

    async def _wait(
        self,
        request: pb.GetInstanceRequest,
        context: grpc.aio.ServicerContext,
        reached: Callable[[OrchestrationStatus | None], bool],
        goal: str,
    ) -> pb.GetInstanceResponse:
        """Wait on the instance's shared poll (``InstanceWaits``) until the goal, the caller's
        deadline or the sidecar's ceiling (``max_wait_seconds``), whichever comes first. At the
        caller's deadline, an instance that does not exist is answered ``exists=False``; at
        the ceiling, or for one that exists, DEADLINE_EXCEEDED (the SDKs raise TimeoutError)."""
        client = await self._client(context)
        if not request.instanceId:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "instanceId must not be empty")
        ceiling = self._limits.max_wait_seconds
        remaining = context.time_remaining()
        caller = None if remaining is None else max(remaining - _DEADLINE_MARGIN, 0.0)
        timeout = ceiling if caller is None else min(caller, ceiling)
        try:
            await self._waits_of(client).wait(request.instanceId, reached, timeout)
        except WaitTimedOut as exc:
            if timeout < ceiling and exc.last is None:  # the shared poll's last read: no extra read
                return pb.GetInstanceResponse(exists=False)
            limit = "" if timeout < ceiling else f" (the sidecar's ceiling on a wait is {ceiling:g} s)"
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"instance {request.instanceId!r} did not {goal} in time{limit}",
            )
        fetch = request.getInputsAndOutputs
        state = await _answer(
            context, client.get_orchestration_state(request.instanceId, fetch_payloads=fetch)
        )
        if state is None:  # purged in between
            return pb.GetInstanceResponse(exists=False)
        return pb.GetInstanceResponse(
            exists=True, orchestrationState=tr.state_to_proto(state, payloads=fetch)
        )

    async def RaiseEvent(
        self, request: pb.RaiseEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.RaiseEventResponse:
        client = await self._client(context)

        async def raise_event() -> None:
            data = _payload(tr.text(request, "input"))
            await client.raise_orchestration_event(request.instanceId, request.name, data=data)

        await _answer(context, raise_event())
        return pb.RaiseEventResponse()

    async def TerminateInstance(
        self, request: pb.TerminateRequest, context: grpc.aio.ServicerContext
    ) -> pb.TerminateResponse:
        client = await self._client(context)

        async def terminate() -> None:
            output = _payload(tr.text(request, "output"))
            try:
                await client.terminate_orchestration(
                    request.instanceId, output=output, recursive=request.recursive
                )
            except OrchestrationStateError:  # finished already: nothing to do, as the SDKs' backends answer
                _LOG.info("terminate of %r ignored: it has finished", request.instanceId)

        await _answer(context, terminate())
        return pb.TerminateResponse()

    async def SuspendInstance(
        self, request: pb.SuspendRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuspendResponse:
        client = await self._client(context)
        await _answer(
            context, client.suspend_orchestration(request.instanceId, reason=tr.text(request, "reason"))
        )
        return pb.SuspendResponse()

    async def ResumeInstance(
        self, request: pb.ResumeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeResponse:
        client = await self._client(context)
        await _answer(
            context, client.resume_orchestration(request.instanceId, reason=tr.text(request, "reason"))
        )
        return pb.ResumeResponse()

    # ---------------------------------------------------------------- management

    async def RestartInstance(
        self, request: pb.RestartInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.RestartInstanceResponse:
        client = await self._client(context)
        restart = client.restart_orchestration(
            request.instanceId, restart_with_new_instance_id=request.restartWithNewInstanceId
        )
        return pb.RestartInstanceResponse(instanceId=await _answer(context, restart))

    async def PurgeInstances(
        self, request: pb.PurgeInstancesRequest, context: grpc.aio.ServicerContext
    ) -> pb.PurgeInstancesResponse:
        client = await self._client(context)

        async def purge() -> PurgeResult:
            if request.instanceId:
                try:
                    return await client.purge_orchestration(request.instanceId, recursive=request.recursive)
                except OrchestrationStateError:  # still live: nothing purged, as the SDKs' backends answer
                    return PurgeResult(0, False)
            if request.HasField("instanceBatch"):
                deleted, complete = 0, True
                for instance_id in request.instanceBatch.instanceIds:
                    try:
                        one = await client.purge_orchestration(instance_id, recursive=request.recursive)
                    except OrchestrationStateError:
                        complete = False
                        continue
                    deleted, complete = deleted + one.deleted_instance_count, complete and one.is_complete
                return PurgeResult(deleted, complete)
            f = request.purgeInstanceFilter
            statuses = [tr.status_from_proto(v) for v in f.runtimeStatus]
            return await client.purge_orchestrations_by(
                created_time_from=tr.to_datetime(f.createdTimeFrom)
                if f.HasField("createdTimeFrom")
                else None,
                created_time_to=tr.to_datetime(f.createdTimeTo) if f.HasField("createdTimeTo") else None,
                runtime_status=[s for s in statuses if s.is_terminal] or None,
                recursive=request.recursive,
                timeout=f.timeout.ToTimedelta() if f.HasField("timeout") else None,
            )

        result = await _answer(context, purge())
        return pb.PurgeInstancesResponse(
            deletedInstanceCount=result.deleted_instance_count,
            isComplete=wrappers_pb2.BoolValue(value=result.is_complete),
        )

    async def QueryInstances(
        self, request: pb.QueryInstancesRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryInstancesResponse:
        """A page of at most ``max_page_size`` instances, trimmed to the reply size limit (the
        page is read again at the size that fits, for the continuation token of the rest)."""
        client = await self._client(context)
        q = request.query
        most = self._limits.max_page_size

        def query(size: int) -> Awaitable[Any]:
            return client.query_orchestrations(
                OrchestrationQuery(
                    created_time_from=tr.to_datetime(q.createdTimeFrom)
                    if q.HasField("createdTimeFrom")
                    else None,
                    created_time_to=tr.to_datetime(q.createdTimeTo) if q.HasField("createdTimeTo") else None,
                    runtime_status=[tr.status_from_proto(v) for v in q.runtimeStatus] or None,
                    instance_id_prefix=tr.text(q, "instanceIdPrefix") or None,
                    page_size=size,
                    fetch_inputs_and_outputs=q.fetchInputsAndOutputs,
                    continuation_token=tr.text(q, "continuationToken") or None,
                )
            )

        size = min(q.maxInstanceCount, most) if q.maxInstanceCount > 0 else most
        page, states = await self._fitting_page(
            context,
            query,
            size,
            lambda state: tr.state_to_proto(state, payloads=q.fetchInputsAndOutputs),
            "instance",
        )
        return pb.QueryInstancesResponse(
            orchestrationState=states, continuationToken=tr.string_value(page.continuation_token)
        )

    async def _fitting_page(
        self,
        context: grpc.aio.ServicerContext,
        query: Callable[[int], Awaitable[Any]],
        size: int,
        to_proto: Callable[[Any], Any],
        what: str,
    ) -> tuple[Any, list[Any]]:
        """A page of at most ``size`` items that fits in one reply, with its own continuation
        token: a page that does not fit is read again at the size that does, and the reply is
        that read's items (the instances may have changed in between)."""
        while True:
            page = await _answer(context, query(size))
            items = [to_proto(item) for item in page.items]
            fit = await self._fitting(context, items, what)
            if fit == len(items):
                return page, items
            size = fit

    async def _fitting(self, context: grpc.aio.ServicerContext, items: list[Any], what: str) -> int:
        """How many of ``items`` fit in one reply (at least one, or the call is refused)."""
        budget, count = self._limits.max_reply_bytes - 1024, 0  # room for the token and framing
        for item in items:
            budget -= item.ByteSize() + 8
            if budget < 0:
                break
            count += 1
        if count == 0 and items:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"one {what} takes {items[0].ByteSize()} bytes, more than a reply may carry "
                f"({self._limits.max_reply_bytes}); ask without inputs, outputs or state",
            )
        return count

    async def ListInstanceIds(
        self, request: pb.ListInstanceIdsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListInstanceIdsResponse:
        """Finished instances by completion time, then id. The table has no index on completion
        time: every page reads the finished instances (created before ``completedTimeTo``, the
        only bound storage can apply) and sorts them here."""
        client = await self._client(context)
        statuses = [tr.status_from_proto(v) for v in request.runtimeStatus] or _FINISHED
        since = tr.to_datetime(request.completedTimeFrom) if request.HasField("completedTimeFrom") else None
        until = tr.to_datetime(request.completedTimeTo) if request.HasField("completedTimeTo") else None
        states = await _answer(
            context,
            client.get_all_orchestration_states(
                OrchestrationQuery(
                    runtime_status=[s for s in statuses if s.is_terminal],
                    created_time_to=until,  # created <= completed < until
                    page_size=1000,
                )
            ),
        )
        keys = sorted(
            (state.completed_at.isoformat(), state.instance_id)
            for state in states
            if state.completed_at is not None
            and (since is None or state.completed_at >= since)
            and (until is None or state.completed_at < until)
        )
        after = tr.text(request, "lastInstanceKey")
        if after:
            cursor = tuple(after.split(_KEY_SEPARATOR, 1))
            keys = [key for key in keys if key > cursor]
        limits = self._limits
        size = (
            min(request.pageSize, limits.max_page_size) if request.pageSize > 0 else limits.default_page_size
        )
        page = keys[:size]
        last = _KEY_SEPARATOR.join(page[-1]) if page and len(keys) > size else None
        return pb.ListInstanceIdsResponse(
            instanceIds=[iid for _, iid in page], lastInstanceKey=tr.string_value(last)
        )

    async def StreamInstanceHistory(
        self, request: pb.StreamInstanceHistoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.HistoryChunk]:
        client = await self._client(context)
        history = client.get_orchestration_history(
            request.instanceId, execution_id=tr.text(request, "executionId")
        )
        events = [tr.event_to_proto(e) for e in await _answer(context, history)]
        while events:  # chunks of at most _HISTORY_CHUNK events, and within the reply size limit
            count = await self._fitting(context, events[:_HISTORY_CHUNK], "history event")
            chunk, events = events[:count], events[count:]
            yield pb.HistoryChunk(events=chunk)

    # ------------------------------------------------------------------ entities

    async def SignalEntity(
        self, request: pb.SignalEntityRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignalEntityResponse:
        client = await self._client(context)
        when = tr.to_datetime(request.scheduledTime) if request.HasField("scheduledTime") else None
        with tracing.under(tr.trace_from_proto(request)):  # the SDK client's span is the parent
            signal = client.signal_entity(
                request.instanceId, request.name, _payload(tr.text(request, "input")), signal_time=when
            )
            await _answer(context, signal)
        return pb.SignalEntityResponse()

    async def GetEntity(
        self, request: pb.GetEntityRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEntityResponse:
        client = await self._client(context)
        entity = await _answer(
            context, client.get_entity(request.instanceId, include_state=request.includeState)
        )
        if entity is None:
            return pb.GetEntityResponse(exists=False)
        return pb.GetEntityResponse(exists=True, entity=tr.entity_to_proto(entity))

    async def QueryEntities(
        self, request: pb.QueryEntitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.QueryEntitiesResponse:
        client = await self._client(context)
        q = request.query
        limits = self._limits
        size = (
            q.pageSize.value if q.HasField("pageSize") and q.pageSize.value > 0 else limits.default_page_size
        )

        def query(size: int) -> Awaitable[Any]:
            return client.query_entities(
                EntityQuery(
                    instance_id_starts_with=tr.text(q, "instanceIdStartsWith") or None,
                    last_modified_from=tr.to_datetime(q.lastModifiedFrom)
                    if q.HasField("lastModifiedFrom")
                    else None,
                    last_modified_to=tr.to_datetime(q.lastModifiedTo)
                    if q.HasField("lastModifiedTo")
                    else None,
                    include_state=q.includeState,
                    include_transient=q.includeTransient,
                    page_size=size,
                    continuation_token=tr.text(q, "continuationToken") or None,
                )
            )

        page, entities = await self._fitting_page(
            context, query, min(size, limits.max_page_size), tr.entity_to_proto, "entity"
        )
        return pb.QueryEntitiesResponse(
            entities=entities, continuationToken=tr.string_value(page.continuation_token)
        )

    async def CleanEntityStorage(
        self, request: pb.CleanEntityStorageRequest, context: grpc.aio.ServicerContext
    ) -> pb.CleanEntityStorageResponse:
        client = await self._client(context)
        clean = client.clean_entity_storage(
            remove_empty_entities=request.removeEmptyEntities,
            release_orphaned_locks=request.releaseOrphanedLocks,
        )
        result = await _answer(context, clean)
        return pb.CleanEntityStorageResponse(
            emptyEntitiesRemoved=result.empty_entities_removed,
            orphanedLocksReleased=result.orphaned_locks_released,
        )

    async def CompleteEntityTask(
        self, request: pb.EntityBatchResult, context: grpc.aio.ServicerContext
    ) -> pb.CompleteTaskResponse:
        await self._complete(context, request.completionToken, request)
        return pb.CompleteTaskResponse()

    async def AbandonTaskEntityWorkItem(
        self, request: pb.AbandonEntityTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.AbandonEntityTaskResponse:
        await self._abandon(context, request.completionToken)
        return pb.AbandonEntityTaskResponse()

    async def RewindInstance(
        self, request: pb.RewindInstanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.RewindInstanceResponse:
        client = await self._client(context)
        await _answer(
            context, client.rewind_orchestration(request.instanceId, reason=tr.text(request, "reason"))
        )
        return pb.RewindInstanceResponse()
