"""Sidecar: a durablehub worker whose code runs in connected Durable Task SDK workers, and the
gRPC server (``TaskHubSidecarService``) they and the SDK clients talk to.

Per task hub it runs one ``Worker`` -- partitions by blob lease, balancing with every other
worker and sidecar of the hub, the reference's commit order, duplicates, poison, timers, the
cache -- built on ``RemoteCode`` instead of an ``App``, plus an ``AsyncDurableClient`` for the
client RPCs. The hub is the one of the settings; a call whose ``taskhub`` metadata (sent by
the Durable Task Scheduler clients) names another hub of the same account gets that hub,
started on first use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType

from durablehub.async_client import AsyncDurableClient
from durablehub.errors import ConfigurationError
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.sidecar.dispatch import WorkDispatcher
from durablehub.sidecar.protocol import grpc, stubs
from durablehub.sidecar.remote import RemoteCode
from durablehub.sidecar.service import SidecarService
from durablehub.taskhub.names import validate_hub_name
from durablehub.worker import Worker

__all__ = ["Sidecar"]

_LOG = logging.getLogger("durablehub.sidecar")
HUB_METADATA = "taskhub"


@dataclass
class _Hub:
    settings: TaskHubSettings
    dispatcher: WorkDispatcher
    worker: Worker
    client: AsyncDurableClient


class Sidecar:
    """Serve ``TaskHubSidecarService`` on ``host:port`` for the hub of ``settings``.

    ``port=0`` picks a free port (``.port`` says which once started). Use as a context manager,
    sync (a background thread runs the event loop) or async.
    """

    def __init__(
        self,
        settings: TaskHubSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 4001,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.options = options or WorkerOptions()
        self.worker_id = worker_id or f"sidecar-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._grace = stop_grace_seconds
        self._hubs: dict[str, _Hub] = {}
        self._starting: dict[str, asyncio.Task[_Hub]] = {}
        self._server: grpc.aio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------- async API

    async def start_async(self) -> None:
        await self._hub(self.settings.task_hub)  # a wrong key or partition count fails here
        server = grpc.aio.server()
        stubs.add_TaskHubSidecarServiceServicer_to_server(SidecarService(self._hub_for), server)
        try:
            self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:
            await self._stop_hubs()
            raise ConfigurationError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        await server.start()
        self._server = server
        _LOG.info("sidecar listening on %s:%d for %s", self.host, self.port, self.settings.describe())

    async def stop_async(self) -> None:
        """Stop taking calls (streams end, so SDK workers reconnect elsewhere), then stop each
        hub's worker gracefully: partitions drained and released, held messages handed back."""
        if self._server is not None:
            await self._server.stop(self._grace)
            self._server = None
        for hub in self._hubs.values():
            hub.dispatcher.close()
        await self._stop_hubs()

    async def _stop_hubs(self) -> None:
        hubs = list(self._hubs.values())
        self._hubs.clear()
        for hub in hubs:
            await hub.worker.stop_async()
            await hub.client.close()

    async def __aenter__(self) -> Sidecar:
        await self.start_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_async()

    async def _hub_for(self, context: grpc.aio.ServicerContext) -> _Hub:
        value = dict(context.invocation_metadata() or ()).get(HUB_METADATA)
        name = value.decode() if isinstance(value, bytes) else value
        try:
            return await self._hub(name or self.settings.task_hub)
        except ConfigurationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

    async def _hub(self, name: str) -> _Hub:
        key = name.lower()  # hub names are case-insensitive in storage
        hub = self._hubs.get(key)
        if hub is not None:
            return hub
        task = self._starting.get(key)
        if task is None:
            task = self._starting[key] = asyncio.create_task(self._start_hub(name))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(key, None)

    async def _start_hub(self, name: str) -> _Hub:
        validate_hub_name(name)  # ConfigurationError naming the rule
        settings = self.settings.model_copy(update={"task_hub": name})
        dispatcher = WorkDispatcher()
        code = RemoteCode(dispatcher, asyncio.get_running_loop())
        worker = Worker(code, settings, options=self.options, worker_id=self.worker_id)
        await worker.start_async()
        hub = _Hub(settings, dispatcher, worker, AsyncDurableClient(settings))
        self._hubs[name.lower()] = hub
        return hub

    @property
    def workers_connected(self) -> int:
        """SDK worker streams connected to the default hub."""
        hub = self._hubs.get(self.settings.task_hub.lower())
        return hub.dispatcher.connected if hub else 0

    @property
    def worker(self) -> Worker | None:
        """The runtime of the default hub (partitions, counters)."""
        hub = self._hubs.get(self.settings.task_hub.lower())
        return hub.worker if hub else None

    # ------------------------------------------------------------------------ sync API

    def start(self) -> Sidecar:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="durablehub-sidecar", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result()
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop_async(), self._loop).result()
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
