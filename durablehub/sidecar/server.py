"""Sidecar: a durablehub worker whose code runs in connected Durable Task SDK workers, and the
gRPC server (``TaskHubSidecarService``) they and the SDK clients talk to.

Per task hub it runs one ``Worker`` -- partitions by blob lease, balancing with every other
worker and sidecar of the hub, the reference's commit order, duplicates, poison, timers, the
cache -- built on ``RemoteCode`` instead of an ``App``, plus an ``AsyncDurableClient`` for the
client RPCs. The hubs are the one of the settings and those of ``task_hubs``, all made and
opened at start; a call whose ``taskhub`` metadata (sent by the Durable Task Scheduler
clients) names any other is refused (PERMISSION_DENIED), so no call makes a hub.

A hub's worker starts in standby: it takes partitions and work items only while at least one
SDK worker is connected to run their code (the first ``GetWorkItems`` stream activates it, a
balance pass at once; the last one leaving releases them unless another connects within
``STANDBY_DELAY_SECONDS``), so a sidecar never holds instances that nothing can run for long.
The sidecar is ``ready`` while every hub it serves has a worker.

Who may call is ``auth``: beyond loopback, a bearer token or mutual TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

from durablehub.async_client import AsyncDurableClient
from durablehub.errors import ConfigurationError
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.sidecar.auth import TlsFiles, TokenInterceptor, check_exposure
from durablehub.sidecar.dispatch import WorkDispatcher
from durablehub.sidecar.health import Health
from durablehub.sidecar.limits import CallCaps, SidecarLimits
from durablehub.sidecar.protocol import grpc, stubs
from durablehub.sidecar.remote import RemoteCode
from durablehub.sidecar.service import SidecarService
from durablehub.taskhub.names import validate_hub_name
from durablehub.worker import Worker

__all__ = ["Sidecar"]

_LOG = logging.getLogger("durablehub.sidecar")
HUB_METADATA = "taskhub"
# With no SDK worker left, the work in flight cannot be answered: the partitions' episodes and
# the activities get this long to finish what they are committing, then their messages go back.
_STANDBY_DRAIN_SECONDS = 1.0
_RETRY_SECONDS = 1.0  # after a failed activation or release (storage unreachable, ...)
# The last SDK worker leaving gives the partitions back only if none connects within this long:
# a worker restarting or a stream's blip must not release everything and cancel work in flight.
STANDBY_DELAY_SECONDS = 5.0


@dataclass
class _Hub:
    settings: TaskHubSettings
    dispatcher: WorkDispatcher
    worker: Worker
    client: AsyncDurableClient
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # SDK workers came or went
    active: bool = False  # the worker takes partitions and work items
    follower: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.active and self.dispatcher.connected > 0


class Sidecar:
    """Serve ``TaskHubSidecarService`` on ``host:port`` for the hub of ``settings``.

    ``port=0`` picks a free port (``.port`` says which once started). ``task_hubs`` are further
    hubs of the account served to calls whose ``taskhub`` metadata names them. ``token``: every
    call must carry ``authorization: Bearer <token>``; ``tls``: TLS (mutual with a client CA).
    A host other than loopback needs one of them. Use as a context manager, sync (a background
    thread runs the event loop) or async.
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
        task_hubs: Iterable[str] = (),
        token: str | None = None,
        tls: TlsFiles | None = None,
        limits: SidecarLimits | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.options = options or WorkerOptions()
        self.worker_id = worker_id or f"sidecar-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._grace = stop_grace_seconds
        served: dict[str, str] = {}  # hub names are case-insensitive in storage
        for name in [settings.task_hub, *task_hubs]:
            served.setdefault(name.lower(), name)
        self.task_hubs = list(served.values())
        self._token = token
        self._tls = tls
        self.limits = limits or SidecarLimits()
        self._hubs: dict[str, _Hub] = {}
        self._server: grpc.aio.Server | None = None
        self._health: Health | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------- async API

    async def start_async(self) -> None:
        """Check exposure, bind the port, make and open every hub (in standby), then serve.

        Raises:
            ConfigurationError: beyond loopback without TLS or a token, a port taken, a hub
                name invalid, a TLS file unreadable (nothing was made in storage yet).
        """
        check_exposure(self.host, token=self._token, tls=self._tls)
        for name in self.task_hubs:
            validate_hub_name(name)  # ConfigurationError naming the rule
        # SO_REUSEPORT (gRPC's default) would let a second sidecar share the port silently.
        server = grpc.aio.server(
            # The token is checked before a call counts against the caps.
            interceptors=[*([TokenInterceptor(self._token)] if self._token else []), CallCaps(self.limits)],
            options=[("grpc.so_reuseport", 0)],
        )
        stubs.add_TaskHubSidecarServiceServicer_to_server(SidecarService(self._hub_for, self.limits), server)
        self._health = Health(server)
        await self._health.set_ready(False)
        address = f"{self.host}:{self.port}"
        try:
            if self._tls is not None:
                self.port = server.add_secure_port(address, self._tls.credentials())
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:
            raise ConfigurationError(
                f"cannot listen on {address}: {_why_not(self.host, self.port)}"
            ) from None
        try:
            for name in self.task_hubs:
                await self._start_hub(name)  # a wrong key or partition count fails here
        except BaseException:
            await self._stop_hubs()
            await _release_port(server)
            raise
        await server.start()
        self._server = server
        _LOG.info(
            "sidecar listening on %s:%d (%s) for %s%s; not ready until an SDK worker connects",
            self.host,
            self.port,
            self.security,
            self.settings.describe(),
            f" and hubs {self.task_hubs[1:]}" if len(self.task_hubs) > 1 else "",
        )

    @property
    def security(self) -> str:
        """How calls are checked, in words (for logs)."""
        parts = []
        if self._tls is not None:
            parts.append("mutual TLS" if self._tls.client_ca else "TLS")
        if self._token:
            parts.append("bearer token")
        return " and ".join(parts) or "plain text, no authentication: loopback only"

    async def stop_async(self) -> None:
        """Stop taking calls (streams end, so SDK workers reconnect elsewhere), then stop each
        hub's worker gracefully: partitions drained and released, held messages handed back."""
        await self._stop_followers()  # the streams ending now must not start a standby
        if self._health is not None:
            await self._health.stop()
        if self._server is not None:
            await self._server.stop(self._grace)
            self._server = None
        for hub in self._hubs.values():
            hub.dispatcher.close()
        await self._stop_hubs()

    async def _stop_followers(self) -> None:
        for hub in self._hubs.values():
            if hub.follower is not None:
                hub.follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hub.follower
                hub.follower = None

    async def _stop_hubs(self) -> None:
        await self._stop_followers()
        hubs = list(self._hubs.values())
        self._hubs.clear()
        for hub in hubs:
            await hub.worker.stop_async()  # after a switch under way, which it waits for
            await hub.client.close()

    async def __aenter__(self) -> Sidecar:
        await self.start_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_async()

    async def _hub_for(self, context: grpc.aio.ServicerContext) -> _Hub:
        value = dict(context.invocation_metadata() or ()).get(HUB_METADATA)
        name = (value.decode() if isinstance(value, bytes) else value) or self.settings.task_hub
        hub = self._hubs.get(name.lower())  # hub names are case-insensitive in storage
        if hub is None:
            try:
                validate_hub_name(name)
            except ConfigurationError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            served = ", ".join(repr(n) for n in self.task_hubs)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"task hub {name!r} (the call's {HUB_METADATA!r} metadata) is not served here: "
                f"this sidecar serves {served}",
            )
        assert hub is not None  # abort raised otherwise
        return hub

    async def _start_hub(self, name: str) -> _Hub:
        settings = self.settings.model_copy(update={"task_hub": name})
        changed = asyncio.Event()
        dispatcher = self.limits.dispatcher(on_change=lambda _connected: changed.set())
        code = RemoteCode(dispatcher, asyncio.get_running_loop())
        worker = Worker(code, settings, options=self.options, worker_id=self.worker_id, standby=True)
        await worker.start_async()
        hub = _Hub(settings, dispatcher, worker, AsyncDurableClient(settings), changed=changed)
        self._hubs[name.lower()] = hub
        hub.follower = asyncio.create_task(self._follow_workers(hub), name=f"sidecar workers of {name}")
        return hub

    async def _follow_workers(self, hub: _Hub) -> None:
        """Activate the hub's worker while an SDK worker is connected, standby otherwise."""
        name = hub.settings.task_hub
        while True:
            await hub.changed.wait()
            hub.changed.clear()
            if self._health is not None:  # ready follows the connected workers at once
                await self._health.set_ready(self.ready)
            wanted = hub.dispatcher.connected > 0
            if wanted == hub.active:
                continue
            if not wanted and await self._reconnected(hub):
                continue
            started = time.monotonic()
            switch = (
                hub.worker.activate_async()
                if wanted
                else hub.worker.standby_async(drain_timeout=_STANDBY_DRAIN_SECONDS)
            )
            try:
                # Shielded: a stop cancels this follower, not a switch half done (the worker's
                # stop then waits for it, and releases whatever it took).
                await asyncio.shield(switch)
            except Exception:
                _LOG.exception(
                    "sidecar: %s hub %r failed; retrying", "activating" if wanted else "releasing", name
                )
                await asyncio.sleep(_RETRY_SECONDS)
                hub.changed.set()
                continue
            hub.active = wanted
            if self._health is not None:
                await self._health.set_ready(self.ready)
            if wanted:
                _LOG.info(
                    "sidecar ready on hub %r: an SDK worker is connected; %d partitions owned %.3f s later",
                    name,
                    len(hub.worker.owned_partitions),
                    time.monotonic() - started,
                )
            else:
                _LOG.info(
                    "sidecar not ready on hub %r: no SDK worker connected; partitions and work items "
                    "given back in %.3f s",
                    name,
                    time.monotonic() - started,
                )

    async def _reconnected(self, hub: _Hub) -> bool:
        """Whether an SDK worker connects to ``hub`` within ``STANDBY_DELAY_SECONDS``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STANDBY_DELAY_SECONDS
        while hub.dispatcher.connected == 0:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.changed.wait(), left)
            hub.changed.clear()
        if self._health is not None:
            await self._health.set_ready(self.ready)
        _LOG.info(
            "sidecar: an SDK worker reconnected to hub %r; its partitions are kept", hub.settings.task_hub
        )
        return True

    @property
    def ready(self) -> bool:
        """Every hub served has an SDK worker connected and takes its partitions (for probes)."""
        return bool(self._hubs) and all(hub.ready for hub in self._hubs.values())

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


async def _release_port(server: grpc.aio.Server) -> None:
    """Let go of the port a server that never served has bound: gRPC closes the listening
    socket only on the stop of a started server (a stop before start, or dropping the object,
    keeps it bound for the life of the process). Started with no hub: a call that slips into
    the moment is refused."""
    await server.start()
    await server.stop(None)


def _why_not(host: str, port: int) -> str:
    """Why gRPC could not bind ``host:port``, found by trying with a plain socket."""
    try:
        with socket.create_server((host.strip("[]"), port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is taken (another process listens on it)"
        return exc.strerror or str(exc)
    return "gRPC could not bind it"
