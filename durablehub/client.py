# Generated from durablehub/async_client.py by scripts/unasync.py: edit that file instead.
"""DurableClient: start orchestration instances, read their state, wait for them, raise events.

Method names and parameters are durabletask-python's (``TaskHubGrpcClient``), served straight
from the Azure Storage task hub instead of a sidecar. Every decision is made in
``durablehub._client_core``; this class only moves data through the task-hub adapters, so the
sync and asyncio clients are the same text but for ``async``/``await`` (a test checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from azure.core.exceptions import HttpResponseError

from durablehub import _client_core as core
from durablehub.engine import history as ev
from durablehub.errors import ConfigurationError
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.state import OrchestrationIdReusePolicy, OrchestrationState
from durablehub.taskhub.hub import TaskHub

__all__ = ["DurableClient"]


class DurableClient:
    """Manages the orchestration instances of one task hub. Close it, or use it as a context manager.

    The hub must exist (a worker or ``durablehub hub create`` makes it). The first call checks
    that it does, with the configured partition count, so that messages reach the right queue.
    """

    def __init__(self, settings: TaskHubSettings, *, hub: TaskHub | None = None) -> None:
        if hub is not None and hub.names != settings.names:
            raise ConfigurationError(
                f"the hub passed ({hub.names.hub!r}, {hub.names.partition_count} partitions) is not "
                f"the one the settings name ({settings.task_hub!r}, {settings.partition_count})"
            )
        self.settings = settings
        self._owns_hub = hub is None
        self._hub = hub if hub is not None else TaskHub(settings)
        self._hub_checked = False

    def close(self) -> None:
        """Close the storage clients, unless the hub was passed in (its owner closes it)."""
        if self._owns_hub:
            self._hub.close()

    def __enter__(self) -> DurableClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> TaskHub:
        if not self._hub_checked:
            self._hub.open()  # TaskHubNotFoundError, PartitionCountMismatchError
            self._hub_checked = True
        return self._hub

    def schedule_new_orchestration(
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
            version=version,
        )
        hub = self._open()
        queue = hub.control_queue_for(request.instance_id)
        for _ in range(core.START_ATTEMPTS):
            existing = hub.instances.get(request.instance_id, resolve_blobs=False)
            plan = core.plan_start(request, existing)
            sent = queue.send(plan.message, visible_after=plan.visible_after)
            input_url = hub.large_messages.url(sent.blob_name) if sent.blob_name else None
            row = core.pending_row(plan, task_hub=hub.names.hub, input_url=input_url)
            try:
                if plan.replace_etag is None:
                    hub.instances.insert(row)
                else:
                    hub.instances.replace(row, etag=plan.replace_etag)
                return plan.instance_id
            except HttpResponseError as exc:
                if not core.is_lost_race(exc):
                    raise
            current = hub.instances.get(request.instance_id, resolve_blobs=False)
            if core.started_by_us(plan, current):
                return plan.instance_id  # a worker took the message up before our insert
            queue.delete_sent(sent)  # another start won: withdraw ours, then decide again
        raise core.start_gave_up(request)

    def get_orchestration_state(
        self, instance_id: str, *, fetch_payloads: bool = True
    ) -> OrchestrationState | None:
        """The instance's state, or None if there is no such instance.

        With ``fetch_payloads=False`` the input, output and custom status are left out (no
        blob downloads). A failed instance's ``failure_details`` are read from its history.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = self._open()
        row = hub.instances.get(instance_id, resolve_blobs=fetch_payloads)
        if row is None:
            return None
        completion: list[ev.HistoryEvent] = []
        failed_execution = core.failed_execution_id(row)
        if failed_execution is not None:
            completion = hub.history.find_events(instance_id, failed_execution, core.COMPLETION_EVENT)
        return core.state_from_row(instance_id, row, fetch_payloads=fetch_payloads, completion=completion)

    def wait_for_orchestration_start(
        self, instance_id: str, *, fetch_payloads: bool = False, timeout: float | timedelta | None = 60
    ) -> OrchestrationState:
        """Wait until the instance has left Pending; return its state.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the message names the last status).
        """
        return self._wait(instance_id, core.is_started, "start", fetch_payloads, timeout)

    def wait_for_orchestration_completion(
        self, instance_id: str, *, fetch_payloads: bool = True, timeout: float | timedelta | None = 60
    ) -> OrchestrationState:
        """Wait until the instance is Completed, Failed, Terminated or Canceled; return its state.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the message names the last status).
        """
        return self._wait(instance_id, core.is_complete, "complete", fetch_payloads, timeout)

    def _wait(
        self,
        instance_id: str,
        reached: Callable[[OrchestrationStatus | None], bool],
        goal: str,
        fetch_payloads: bool,
        timeout: float | timedelta | None,
    ) -> OrchestrationState:
        instance_id = core.check_instance_id(instance_id)
        seconds = core.check_timeout(timeout)
        hub = self._open()
        deadline = None if seconds is None else monotonic() + seconds
        delays = core.poll_delays()
        while True:
            status = core.status_of(hub.instances.get(instance_id, resolve_blobs=False))
            if reached(status):
                state = self.get_orchestration_state(instance_id, fetch_payloads=fetch_payloads)
                if state is not None and reached(state.runtime_status):
                    return state
            delay = next(delays)
            if deadline is not None and seconds is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise core.wait_timed_out(instance_id, goal, seconds, status)
                delay = min(delay, remaining)
            time.sleep(delay)

    def raise_orchestration_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Send an event to a live instance, for ``ctx.wait_for_external_event(event_name)``.

        Raises:
            OrchestrationNotFoundError: no such instance.
            OrchestrationStateError: the instance has finished; the event was not sent.
            PayloadError: ``data`` is not JSON-serializable.
        """
        instance_id = core.check_instance_id(instance_id)
        event = core.prepare_event(event_name, data)
        hub = self._open()
        row = hub.instances.get(instance_id, resolve_blobs=False)
        hub.control_queue_for(instance_id).send(core.plan_event(instance_id, event, row))

    def get_orchestration_history(
        self, instance_id: str, *, execution_id: str | None = None
    ) -> list[ev.HistoryEvent]:
        """The history events of the current generation (or of ``execution_id`` while it is stored).

        Raises:
            OrchestrationNotFoundError: no such instance.
        """
        instance_id = core.check_instance_id(instance_id)
        hub = self._open()
        if execution_id is None:
            row = core.require_row(instance_id, hub.instances.get(instance_id, resolve_blobs=False))
            execution_id = core.execution_id_of(row)
        page = hub.history.load(instance_id, execution_id)
        return list(page.events)
