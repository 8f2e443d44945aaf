"""AsyncDurableClient: start orchestration instances, read their state, wait for them, raise events.

Method names and parameters are durabletask-python's (``TaskHubGrpcClient``), served straight
from the Azure Storage task hub instead of a sidecar. Every decision is made in
``durablehub._client_core``; this class only moves data through the task-hub adapters, so the
sync and asyncio clients are the same text but for ``async``/``await`` (a test checks it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceModifiedError

from durablehub import _client_core as core
from durablehub import _entity_client_core as entity_core
from durablehub import _history_ranges as ranges
from durablehub import _management_core as mgmt
from durablehub._bulk import async_for_each, async_for_each_grouped
from durablehub.engine import history as ev
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.metadata import (
    CleanEntityStorageResult,
    EntityMetadata,
    EntityQuery,
    EntityQueryPage,
)
from durablehub.errors import CheckpointConflictError, ConfigurationError, TaskHubNotFoundError
from durablehub.models import OrchestrationStatus
from durablehub.runtime import nearby
from durablehub.settings import TaskHubSettings
from durablehub.state import (
    OrchestrationIdReusePolicy,
    OrchestrationQuery,
    OrchestrationState,
    OrchestrationStatePage,
    PurgeResult,
)
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue, EncodedMessage, SentMessage
from durablehub.taskhub.names import unescape_partition_key
from durablehub.taskhub.offload import async_both
from durablehub.telemetry import tracing

__all__ = ["AsyncDurableClient"]

_LOG = logging.getLogger("durablehub.client")


async def _every_page(fetch: Callable[[Any], Any], query: Any) -> list[Any]:
    """Every item of a paged query: ``fetch`` one page after another, passing the token on."""
    items: list[Any] = []
    while True:
        page = await fetch(query)
        items.extend(page.items)
        if page.continuation_token is None:
            return items
        query = dataclasses.replace(query, continuation_token=page.continuation_token)


class AsyncDurableClient:
    """Manages the orchestration instances of one task hub. Close it, or use it as a context manager.

    The hub must exist (a worker or ``durablehub hub create`` makes it). The first call checks
    that it does, with the configured partition count, so that messages reach the right queue.
    """

    def __init__(
        self,
        settings: TaskHubSettings,
        *,
        hub: AsyncTaskHub | None = None,
        default_version: str | None = None,
    ) -> None:
        if default_version is not None and not isinstance(default_version, str):
            raise TypeError(f"default_version must be a string, got {type(default_version).__name__}")
        if hub is not None and hub.names != settings.names:
            raise ConfigurationError(
                f"the hub passed ({hub.names.hub!r}, {hub.names.partition_count} partitions) is not "
                f"the one the settings name ({settings.task_hub!r}, {settings.partition_count})"
            )
        self.settings = settings
        self.default_version = default_version  # of starts that name no version (durabletask's)
        self._owns_hub = hub is None
        self._hub = hub if hub is not None else AsyncTaskHub(settings)
        self._hub_checked = False
        # Signals to entities carry this client's id and labels, so each entity runs them in order.
        self._client_id = uuid.uuid4().hex
        self._signals_sent: dict[str, datetime] = {}
        self._max_payload = settings.max_payload_bytes
        self._nearby_key: nearby.HubKey | None = None

    async def close(self) -> None:
        """Close the storage clients, unless the hub was passed in (its owner closes it)."""
        if self._owns_hub:
            await self._hub.close()

    async def __aenter__(self) -> AsyncDurableClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _open(self, *, create: bool = False) -> AsyncTaskHub:
        """The hub, checked once; with ``create`` (a start or a signal), created if missing,
        as DurableTask.AzureStorage's clients do: a program may start its client before its
        first worker. Read-only calls never create anything: on a hub a worker is making
        they answer as on an empty hub (and check again next time).

        A hub found is not assumed whole (older durablehub and the C# provider write
        ``taskhub.json`` first; a queue may be deleted under a running client): a write
        that finds its queue or table missing makes it and is sent again (README, "The
        task hub")."""
        if not self._hub_checked:
            try:
                await self._hub.open()  # TaskHubNotFoundError, PartitionCountMismatchError
            except TaskHubNotFoundError as exc:
                if not create:
                    if exc.being_made:
                        return self._hub
                    raise
                await self._hub.create()  # idempotent; agrees with a worker creating it meanwhile
            self._hub_checked = True
        return self._hub

    async def schedule_new_orchestration(
        self,
        orchestrator: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        reuse_id_policy: OrchestrationIdReusePolicy | None = None,
        tags: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> str:
        """Start an orchestration instance; return its id (a new ``uuid4().hex`` by default).

        ``version`` (default: the client's ``default_version``) is the instance's orchestration
        version (``ctx.version``), checked by each worker's versioning policy.
        ``start_at`` (at most 6 days ahead; naive means UTC) delays the start. If the id is
        taken, the instance is replaced only when ``reuse_id_policy`` (by default: finished
        instances) allows it; the new generation's ``Generation`` is the old one's + 1.

        Raises:
            OrchestrationAlreadyExistsError: the id is taken and the policy refuses to replace it.
            PayloadError: the input is not JSON-serializable. Nothing was written.
            ValueError: an invalid instance id or start time. Nothing was written.
        """
        request = core.prepare_start(
            orchestrator,
            input=input,
            instance_id=instance_id,
            start_at=start_at,
            reuse_id_policy=reuse_id_policy,
            tags=tags,
            version=version if version is not None else self.default_version,
            max_payload_bytes=self._max_payload,
        )
        return await self._start(request)

    async def _start(self, request: core.StartRequest) -> str:
        with tracing.creating_orchestration(request.name, request.version, request.instance_id) as span:
            return await self._start_traced(request, span)

    async def _start_traced(self, request: core.StartRequest, span: tracing.TraceHandle) -> str:
        hub = await self._open(create=True)
        queue = hub.control_queue_for(request.instance_id)
        for attempt in range(core.START_ATTEMPTS):
            # An id this client just drew (uuid4) names no instance: nothing to read first.
            fresh = request.fresh_id and attempt == 0
            existing = None if fresh else await hub.instances.get(request.instance_id, resolve_blobs=False)
            plan = core.plan_start(request, existing, trace_context=span.context)
            span.set_attribute(tracing.EXECUTION_ID, plan.execution_id)
            message = await queue.encode(plan.message)
            input_url = hub.large_messages.url(message.blob_name) if message.blob_name else None
            row = core.pending_row(plan, task_hub=hub.names.hub, input_url=input_url)
            sent, failure = await self._write_start(hub, queue, plan, message, row, fresh=fresh)
            if failure is None:
                if plan.visible_after is None:
                    self._sent_to(plan.instance_id)
                return plan.instance_id
            if not core.is_lost_race(failure):
                raise failure
            current = await hub.instances.get(request.instance_id, resolve_blobs=False)
            if core.started_by_us(plan, current):
                return plan.instance_id  # a worker took the message up before our insert
            assert sent is not None  # only a fresh id's start comes back without its message
            await queue.delete_sent(sent)  # another start won: withdraw ours, then decide again
        raise core.start_gave_up(request)

    async def _write_start(
        self,
        hub: AsyncTaskHub,
        queue: AsyncTaskHubQueue,
        plan: core.StartPlan,
        message: EncodedMessage,
        row: dict[str, Any],
        *,
        fresh: bool,
    ) -> tuple[SentMessage | None, HttpResponseError | None]:
        """Send the start message, then insert (or replace) the Pending row, as
        DurableTask.AzureStorage orders them. The message is sent; the row's failure, if any, is
        returned (a lost race is the caller's to settle).

        A uuid4 this client just drew names no instance, so nothing can conflict with its row:
        both writes go at once, one round trip instead of two (unless the message goes to a
        blob the row points at: that blob is written first). If the send fails, the row that
        went in beside it is withdrawn and the send's error raised -- unless the row changed
        meanwhile: then a worker has run the start (the message went in and only the answer was
        lost), the instance exists, and the start succeeded (with no message to return)."""
        send = functools.partial(queue.send, message, visible_after=plan.visible_after)
        if not fresh or message.blob_name is not None:
            sent = await send()
            try:
                if plan.replace_etag is None:
                    await hub.instances.insert(row)
                else:
                    await hub.instances.replace(row, etag=plan.replace_etag)
            except HttpResponseError as exc:
                return sent, exc
            return sent, None
        sent_or_error, written = await async_both(send, functools.partial(hub.instances.insert, row))
        if isinstance(sent_or_error, Exception):
            if not isinstance(written, Exception):
                if not await self._withdraw_pending_row(hub, plan.instance_id, etag=written):
                    return None, None
            raise sent_or_error
        if isinstance(written, HttpResponseError):
            return sent_or_error, written
        if isinstance(written, Exception):
            raise written
        return sent_or_error, None

    async def _withdraw_pending_row(self, hub: AsyncTaskHub, instance_id: str, *, etag: str) -> bool:
        """Delete the Pending row a failed start wrote; False if a worker has written the row
        since (the start message got through after all)."""
        try:
            await hub.instances.delete(instance_id, etag=etag)
        except ResourceModifiedError:
            return False
        except Exception:  # the row stays Pending: the caller learns the start failed
            _LOG.warning(
                "could not withdraw the Pending row of %r after its start failed", instance_id, exc_info=True
            )
        return True

    async def get_orchestration_state(
        self, instance_id: str, *, fetch_payloads: bool = True
    ) -> OrchestrationState | None:
        """The instance's state, or None if there is no such instance.

        With ``fetch_payloads=False`` the input, output and custom status are left out (no
        blob downloads). A failed instance's ``failure_details`` are read from its history.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=False)
        return None if row is None else await self._state_of(hub, instance_id, row, fetch_payloads)

    async def _state_of(
        self, hub: AsyncTaskHub, instance_id: str, row: dict[str, Any], fetch_payloads: bool
    ) -> OrchestrationState:
        """The state of a row read without its blobs: downloads them if asked, and a failed
        instance's details from its history."""
        if fetch_payloads:
            await hub.instances.resolve_blobs(row)
        completion: list[ev.HistoryEvent] = []
        failed_execution = core.failed_execution_id(row)
        if failed_execution is not None:
            completion = await hub.history.find_events(instance_id, failed_execution, core.COMPLETION_EVENT)
        return core.state_from_row(instance_id, row, fetch_payloads=fetch_payloads, completion=completion)

    async def wait_for_orchestration_start(
        self, instance_id: str, *, fetch_payloads: bool = False, timeout: float | timedelta | None = 60
    ) -> OrchestrationState:
        """Wait until the instance has left Pending; return its state.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the message names the last status).
        """
        return await self._wait(instance_id, core.is_started, "start", fetch_payloads, timeout)

    async def wait_for_orchestration_completion(
        self, instance_id: str, *, fetch_payloads: bool = True, timeout: float | timedelta | None = 60
    ) -> OrchestrationState:
        """Wait until the instance is Completed, Failed, Terminated or Canceled; return its state.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the message names the last status).
        """
        return await self._wait(instance_id, core.is_complete, "complete", fetch_payloads, timeout)

    async def _wait(
        self,
        instance_id: str,
        reached: Callable[[OrchestrationStatus | None], bool],
        goal: str,
        fetch_payloads: bool,
        timeout: float | timedelta | None,
    ) -> OrchestrationState:
        instance_id = core.check_instance_id(instance_id)
        seconds = core.check_timeout(timeout)
        hub = await self._open()
        began = monotonic()
        deadline = None if seconds is None else began + seconds
        schedule = core.PollSchedule()
        while True:
            row = await hub.instances.get(instance_id, resolve_blobs=False)
            status = core.status_of(row)
            if row is not None and reached(status):
                return await self._state_of(hub, instance_id, row, fetch_payloads)
            age = core.age_of(row, datetime.now(UTC))
            delay = schedule.after(status, waited=monotonic() - began, age=age)
            if deadline is not None and seconds is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise core.wait_timed_out(instance_id, goal, seconds, status)
                delay = min(delay, remaining)
            await asyncio.sleep(delay)

    async def raise_orchestration_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Send an event to a live instance, for ``ctx.wait_for_external_event(event_name)``.

        With ``throw_status_exceptions_on_raise_event`` off (settings), nothing is read first: the event
        is sent, and a worker discards it if the instance is missing or finished.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance has finished; the event was not sent.
            PayloadError: ``data`` is not JSON-serializable.
        """
        instance_id = core.check_instance_id(instance_id)
        event = core.prepare_event(event_name, data, max_payload_bytes=self._max_payload)
        hub = await self._open()
        checked = self.settings.throw_status_exceptions_on_raise_event
        row = await hub.instances.get(instance_id, resolve_blobs=False) if checked else None
        with tracing.raising_event(event.name, instance_id) as span:
            message = core.plan_event(instance_id, event, row, checked=checked, trace_context=span.context)
            await hub.control_queue_for(instance_id).send(message)
        self._sent_to(instance_id)

    def _sent_to(self, instance_id: str) -> None:
        """Wake a worker of this process that owns the instance (``runtime.nearby``): no request."""
        if self._nearby_key is None:
            self._nearby_key = nearby.hub_key(self.settings)
        nearby.sent_to(self._nearby_key, instance_id)

    async def get_orchestration_history(
        self, instance_id: str, *, execution_id: str | None = None
    ) -> list[ev.HistoryEvent]:
        """The history events of the current generation (or of ``execution_id`` while it is stored).

        Raises:
            OrchestrationNotFoundError: no such instance.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = await self._open()
        if execution_id is None:
            row = core.require_row(instance_id, await hub.instances.get(instance_id, resolve_blobs=False))
            execution_id = core.execution_id_of(row)
        page = await hub.history.load(instance_id, execution_id)
        return list(page.events)

    # --- management ---

    async def terminate_orchestration(
        self, instance_id: str, *, output: Any = None, recursive: bool = True
    ) -> None:
        """Terminate a live instance; ``output`` (the reason) becomes its output.

        The worker that owns the instance applies it; wait for the Terminated status with
        ``wait_for_orchestration_completion``. With ``recursive`` (the default) its running
        sub-orchestrations are terminated too. A Pending instance whose start is scheduled
        is marked Terminated at once; when its start comes up, it runs nothing.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance has finished already. Nothing was sent.
            PayloadError: ``output`` is not JSON-serializable.
        """
        instance_id = core.check_instance_id(instance_id)
        event = mgmt.terminate_event(output, recursive=recursive, max_payload_bytes=self._max_payload)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=False)
        mgmt.require_unfinished(instance_id, row, "terminate")
        assert row is not None
        if mgmt.is_scheduled_pending(row):
            # A message could reach the worker before the hidden start; mark the row instead.
            try:
                await hub.instances.merge(mgmt.terminated_before_start(instance_id, event), etag=row["_etag"])
                return
            except ResourceModifiedError:  # the start ran meanwhile: message it as usual
                mgmt.require_unfinished(
                    instance_id, await hub.instances.get(instance_id, resolve_blobs=False), "terminate"
                )
        await hub.control_queue_for(instance_id).send(mgmt.control_message(instance_id, event))

    async def suspend_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Suspend a live instance: it stops running; events that arrive meanwhile are kept.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance has finished. Nothing was sent.
        """
        reason = mgmt.check_reason(reason, "suspend_orchestration", max_payload_bytes=self._max_payload)
        await self._send_control(instance_id, ev.ExecutionSuspended(reason=reason), "suspend")

    async def resume_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Resume a suspended instance; the events it received while suspended are delivered.

        Resuming an instance that is not suspended does nothing.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance has finished. Nothing was sent.
        """
        reason = mgmt.check_reason(reason, "resume_orchestration", max_payload_bytes=self._max_payload)
        await self._send_control(instance_id, ev.ExecutionResumed(reason=reason), "resume")

    async def _send_control(self, instance_id: str, event: ev.HistoryEvent, operation: str) -> None:
        instance_id = core.check_instance_id(instance_id)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=False)
        mgmt.require_unfinished(instance_id, row, operation)
        await hub.control_queue_for(instance_id).send(mgmt.control_message(instance_id, event))

    async def rewind_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Re-run a failed instance from its failures, keeping every result it received.

        Failed activities are scheduled again, failed sub-orchestrations are rewound in turn,
        and the orchestrator resumes where it was waiting (``durablehub.engine.rewind``). The
        status is Pending until the worker has applied the rewind.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance is not Failed. Nothing was changed.
        """
        instance_id = core.check_instance_id(instance_id)
        reason = mgmt.check_reason(reason, "rewind_orchestration", max_payload_bytes=self._max_payload)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=False)
        mgmt.require_status(instance_id, row, {OrchestrationStatus.FAILED}, "rewind")
        assert row is not None
        event = ev.ExecutionRewound(reason=reason, instance_id=instance_id)
        message = mgmt.control_message(instance_id, event, execution_id=core.execution_id_of(row))
        await hub.control_queue_for(instance_id).send(message)
        try:  # Pending until the worker's checkpoint says Running (the reference does the same)
            await hub.instances.merge(mgmt.pending_after_rewind(instance_id), etag=row["_etag"])
        except ResourceModifiedError:
            pass  # the worker has applied the rewind already

    async def restart_orchestration(
        self, instance_id: str, *, restart_with_new_instance_id: bool = False
    ) -> str:
        """Start the instance's orchestrator again with its original input; return the new id.

        With the same id, the instance must have finished (its history is replaced); with
        ``restart_with_new_instance_id`` it may be in any status and is left alone.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance is still live and the id would be reused.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=True)
        if restart_with_new_instance_id:
            core.require_row(instance_id, row)
        else:
            mgmt.require_status(instance_id, row, mgmt.FINISHED, "restart (with the same id)")
        assert row is not None
        request = core.prepare_start(
            row.get("Name") or "",
            input=None,
            instance_id=None if restart_with_new_instance_id else instance_id,
            start_at=None,
            reuse_id_policy=None,
            tags=core.tags_of(row),
            version=row.get("Version") or None,
        )
        return await self._start(dataclasses.replace(request, input=core.input_of(row)))

    async def purge_orchestration(self, instance_id: str, *, recursive: bool = True) -> PurgeResult:
        """Delete a finished instance: its Instances row, History rows and large-message blobs.

        With ``recursive``, the sub-orchestrations it started are purged too (those that have
        finished). An unknown id purges nothing (``deleted_instance_count == 0``).

        Raises:
            OrchestrationStateError: the instance is still live; terminate it first.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=False)
        if row is None:
            return PurgeResult(0)
        mgmt.require_status(instance_id, row, mgmt.FINISHED, "purge")
        return await self._purge(instance_id, row, recursive=recursive)

    async def _purge(
        self,
        instance_id: str,
        row: Mapping[str, Any],
        *,
        recursive: bool,
        blob_folders: frozenset[str] | None = None,
        history: Sequence[Any] | None = None,
    ) -> PurgeResult:
        """Purge an instance found finished in ``row``, unless it changes meanwhile: its
        history only if not written since the row (then under the sentinel's guard), its blobs
        only if older than the row, and the row only if unchanged -- a restart, a rewind or a
        new start in between is left alone (and the result says the purge is incomplete).
        ``blob_folders``: the large-message folders listed after ``row`` was read (a purge by
        filter lists them once); sub-orchestrations, read later, list their own blobs.
        ``history``: the instance's History rows listed after ``row`` was read, with the
        columns of ``_history_ranges.history_select`` (a purge by filter lists them by ranges)."""
        hub = await self._open()
        deleted, complete = 0, True
        if recursive:
            rows = history if history is not None else await hub.history.list_rows(instance_id)
            for child in mgmt.child_instance_ids(rows):
                child_row = await hub.instances.get(child, resolve_blobs=False)
                if child_row is None:
                    continue
                if core.status_of(child_row) not in mgmt.FINISHED:
                    _LOG.warning(
                        "not purging %r, a sub-orchestration of %r: it is still live", child, instance_id
                    )
                    complete = False
                    continue
                result = await self._purge(child, child_row, recursive=True)
                deleted += result.deleted_instance_count
                complete = complete and result.is_complete
        # The row goes last: while it exists, the purge can be run again.
        try:
            await hub.history.delete_instance(instance_id, found_at=row.get("_timestamp"), listed=history)
            await hub.large_messages.delete_instance_blobs(
                instance_id, written_before=row.get("_timestamp"), folders=blob_folders
            )
            if await hub.instances.delete(instance_id, etag=row["_etag"]):
                deleted += 1
        except (CheckpointConflictError, ResourceModifiedError):
            _LOG.warning("not purging %r: it was written to while being purged (restarted?)", instance_id)
            return PurgeResult(deleted, False)
        return PurgeResult(deleted, complete)

    async def purge_orchestrations_by(
        self,
        *,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: Collection[OrchestrationStatus] | None = None,
        recursive: bool = False,
        progress: Callable[[int, int], None] | None = None,
        timeout: float | timedelta | None = None,
    ) -> PurgeResult:
        """Purge every finished instance created in the range and in one of ``runtime_status``
        (by default: Completed, Failed, Terminated, Canceled), ``settings.bulk_concurrency`` at
        once; ``progress(done, total)`` after each. Interrupted, running it again finishes it.

        ``timeout`` (DurableTask.Core's ``PurgeInstanceFilter.Timeout``): after that long no
        further instance is started (those under way finish) and the result says
        ``is_complete=False``; running it again goes on with the rest.

        Raises:
            ValueError: ``runtime_status`` names a live status, or ``timeout`` is negative.
        """
        statuses = mgmt.purge_statuses(runtime_status)
        seconds = core.check_timeout(timeout)
        deadline = None if seconds is None else monotonic() + seconds

        def out_of_time() -> bool:
            return deadline is not None and monotonic() >= deadline

        query = OrchestrationQuery(
            created_time_from=created_time_from,
            created_time_to=created_time_to,
            runtime_status=statuses,
        )
        hub = await self._open()
        filter, params = mgmt.query_filter(query)
        # The rows as found carry the guards of _purge (ETag, Timestamp): an instance written
        # since (restarted, rewound) is left alone there, so no second read of each row.
        found: list[dict[str, Any]] = []
        token: dict[str, Any] | None = None
        while True:
            page, token = await hub.instances.query_page(
                filter,
                parameters=params,
                select=list(mgmt.PURGE_SELECT),
                page_size=1000,
                continuation_token=token,
                resolve_blobs=False,
            )
            found.extend(page)
            if found and out_of_time():
                return PurgeResult(0, False)
            if not token:
                break

        # One listing of the blob folders instead of one per instance, when it is cheaper: listed
        # after the rows were read, so every blob older than a row is in it.
        folders = (
            await hub.large_messages.instance_folders(max_pages=max(1, len(found) // 10)) if found else None
        )

        # Their histories a range of instances at a time (durablehub._history_ranges), the
        # next range listed while the one before is being deleted.
        by_key = {row["PartitionKey"]: row for row in found}
        select = ranges.history_select(recursive=recursive)

        async def list_range(keys: Sequence[str]) -> dict[str, list[Any]]:
            listing = ranges.RangeListing(keys)
            await hub.history.list_key_range(
                listing.low,
                listing.high,
                select=select,
                page_size=ranges.PAGE_SIZE,
                take_page=listing.add_page,
            )
            return listing.listed()

        async def purge_one(key: str, histories: dict[str, list[Any]]) -> PurgeResult:
            iid = unescape_partition_key(key)
            return await self._purge(
                iid, by_key[key], recursive=recursive, blob_folders=folders, history=histories.get(key)
            )

        results = await async_for_each_grouped(
            ranges.groups(by_key),
            list_range,
            purge_one,
            limit=self.settings.bulk_concurrency,
            progress=progress,
            stop=out_of_time,
        )
        finished = [r for r in results if r is not None]
        return PurgeResult(
            sum(r.deleted_instance_count for r in finished),
            len(finished) == len(results) and all(r.is_complete for r in finished),
        )

    async def query_orchestrations(self, query: OrchestrationQuery | None = None) -> OrchestrationStatePage:
        """One page of the instances ``query`` selects; pass ``continuation_token`` on for the next.

        Raises:
            ValueError: the continuation token is not one a previous page returned.
        """
        query = query or OrchestrationQuery()
        token = mgmt.decode_token(query.continuation_token)
        filter, params = mgmt.query_filter(query)
        hub = await self._open()
        found, next_token = await hub.instances.query_page(
            filter,
            parameters=params,
            select=mgmt.query_select(query),
            page_size=query.page_size,
            continuation_token=token,
            resolve_blobs=query.fetch_inputs_and_outputs,
        )
        items = core.states_from_rows(found, fetch_payloads=query.fetch_inputs_and_outputs)
        return OrchestrationStatePage(items, mgmt.encode_token(next_token))

    async def get_all_orchestration_states(
        self, query: OrchestrationQuery | None = None
    ) -> list[OrchestrationState]:
        """Every instance ``query`` selects, all pages read (mind the size of a large hub)."""
        return await _every_page(self.query_orchestrations, query or OrchestrationQuery())

    # --- entities (durablehub._entity_client_core) ---

    async def signal_entity(
        self,
        entity_instance_id: EntityInstanceId | str,
        operation_name: str,
        input: Any = None,
        *,
        signal_time: datetime | None = None,
    ) -> None:
        """Send a one-way operation to an entity (created by its first operation), delivered now
        or at ``signal_time``.

        Raises:
            ValueError: not an entity id (``EntityInstanceId`` or ``"@name@key"``), or no operation.
            PayloadError: ``input`` is not JSON-serializable.
        """
        target = entity_core.signal_target(entity_instance_id, operation_name)
        with tracing.signaling_entity(str(target), operation_name, signal_time) as span:
            plan = entity_core.plan_signal(
                entity_instance_id,
                operation_name,
                input,
                signal_time,
                client_id=self._client_id,
                last_sent=self._signals_sent,
                max_payload_bytes=self._max_payload,
                trace_context=span.context,
            )
            hub = await self._open(create=True)
            await hub.control_queue_for(plan.instance_id).send(plan.message, visible_after=plan.delay)
            plan.sent(self._signals_sent)

    async def get_entity(
        self, entity_instance_id: EntityInstanceId | str, *, include_state: bool = True
    ) -> EntityMetadata | None:
        """The entity's metadata (and state), or None if it does not exist (it has no state)."""
        instance_id = str(EntityInstanceId.of(entity_instance_id))
        hub = await self._open()
        row = await hub.instances.get(instance_id, resolve_blobs=include_state)
        if row is None:
            return None
        return entity_core.metadata_from_row(row, include_state=include_state)

    async def query_entities(self, query: EntityQuery | None = None) -> EntityQueryPage:
        """One page of the entities ``query`` selects; pass ``continuation_token`` on for the next.

        A page may hold fewer than ``page_size`` entities: rows without state are skipped unless
        ``include_transient``.
        """
        query = query or EntityQuery()
        token = mgmt.decode_token(query.continuation_token)
        filter, params = entity_core.query_filter(query)
        hub = await self._open()
        found, next_token = await hub.instances.query_page(
            filter,
            parameters=params,
            select=entity_core.query_select(query),
            page_size=query.page_size,
            continuation_token=token,
            resolve_blobs=query.include_state,
        )
        items = [
            meta
            for row in found
            if (
                meta := entity_core.metadata_from_row(
                    row, include_state=query.include_state, include_transient=query.include_transient
                )
            )
            is not None
        ]
        return EntityQueryPage(items, mgmt.encode_token(next_token))

    async def get_all_entities(self, query: EntityQuery | None = None) -> list[EntityMetadata]:
        """Every entity ``query`` selects, all pages read."""
        return await _every_page(self.query_entities, query or EntityQuery())

    async def clean_entity_storage(
        self, *, remove_empty_entities: bool = True, release_orphaned_locks: bool = True
    ) -> CleanEntityStorageResult:
        """Delete entities with no state, no waiting request and no lock; release locks held by
        orchestrations that have ended or no longer exist."""
        hub = await self._open()
        filter, params = entity_core.query_filter(EntityQuery())
        removed = released = 0

        async def clean_one(row: Mapping[str, Any]) -> tuple[int, int]:
            """(removed, released) for one entity."""
            instance_id = entity_core.entity_instance_id_of(row)
            status = entity_core.EntityStatus.from_json(row.get("CustomStatus"))
            if status.locked_by is not None:
                if release_orphaned_locks:
                    holder = await hub.instances.get(status.locked_by, resolve_blobs=False)
                    if entity_core.holder_has_ended(holder):
                        message = entity_core.plan_release(instance_id, status.locked_by)
                        await hub.control_queue_for(instance_id).send(message)
                        return 0, 1
            elif remove_empty_entities and not status.entity_exists and not status.queue_size:
                try:  # both guarded: a signal processed meanwhile keeps the entity
                    await hub.history.delete_instance(instance_id)
                    return int(await hub.instances.delete(instance_id, etag=row["_etag"])), 0
                except (CheckpointConflictError, ResourceModifiedError):
                    _LOG.info("not removing entity %r: it was signalled meanwhile", instance_id)
            return 0, 0

        token: dict[str, Any] | None = None
        while True:
            found, token = await hub.instances.query_page(
                filter,
                parameters=params,
                select=entity_core.ENTITY_SELECT,
                page_size=1000,
                continuation_token=token,
                resolve_blobs=False,
            )
            counts = await async_for_each(found, clean_one, limit=self.settings.bulk_concurrency)
            removed += sum(r for r, _ in counts)
            released += sum(r for _, r in counts)
            if token is None:
                return CleanEntityStorageResult(removed, released)
