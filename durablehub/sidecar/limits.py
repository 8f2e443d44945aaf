"""SidecarLimits: what one sidecar lets its callers cost, and the interceptor that enforces
the call caps.

Client calls and worker calls are capped apart, so a flood of client calls can never starve
connected SDK workers: ``Complete*``/``Abandon*`` (the answers the runtime is waiting for) and
``Hello`` are never capped; ``GetWorkItems`` streams have a cap of their own; long polls
(``WaitForInstance*``) have theirs; every other call counts as a client unary call. A call
beyond its cap is answered ``RESOURCE_EXHAUSTED`` at once. The Python SDK does not retry that
status (by default it retries no call; its opt-in retry policy covers UNAVAILABLE): an SDK
worker refused a stream reconnects through its own loop after a delay; a client call over its
cap raises to the caller. The defaults are listed in README.md ("Using the Durable Task SDKs",
Limits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from durablehub.sidecar.dispatch import WorkDispatcher
from durablehub.sidecar.protocol import SERVICE_NAME, grpc

__all__ = ["CallCaps", "SidecarLimits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SidecarLimits:
    """Bounds of one sidecar (None or 0 where noted: no bound)."""

    max_unary_calls: int = 200
    """Client unary calls served at once (start, get, raise, query, purge, ...)."""
    max_waits: int = 1000
    """``WaitForInstanceStart``/``Completion`` calls open at once."""
    max_streams: int = 100
    """``GetWorkItems`` streams (connected SDK workers) at once."""
    max_wait_seconds: float = 300.0
    """A wait's server-side ceiling: past it (or the caller's own deadline, if shorter) it is
    answered DEADLINE_EXCEEDED, which the SDK clients raise as TimeoutError."""
    wait_missing_poll_seconds: float = 10.0
    """The shared poll of an instance that does not exist yet backs off to this (one that
    exists is read as durablehub's client reads it: from 50 ms, backing off to 1 s)."""
    work_item_timeout_seconds: float | None = 60.0
    """An orchestration or entity work item given to a stream that has answered nothing since
    is taken back after this long: the stream is dropped (it stopped reading) and its work goes
    to the other streams."""
    activity_timeout_seconds: float | None = None
    """The same for activity work items (None: activities may run as long as they need)."""
    stream_queue_limit: int = 100
    """Work items waiting to be written to one stream; a full stream is given no more."""
    default_page_size: int = 100
    """``ListInstanceIds`` page size when the caller names none."""
    max_page_size: int = 1000
    """The largest ``ListInstanceIds``/``QueryInstances`` page served."""
    max_reply_bytes: int = 4 * 1024 * 1024 - 64 * 1024
    """A reply's size limit: under the 4 MiB a gRPC client receives by default; a query page
    is trimmed to fit (with a continuation token for the rest)."""

    def dispatcher(self, on_change: Callable[[int], None] | None = None) -> WorkDispatcher:
        """A hub's dispatcher with these bounds (``on_change``: see ``WorkDispatcher``)."""
        return WorkDispatcher(
            item_timeout=self.work_item_timeout_seconds,
            activity_timeout=self.activity_timeout_seconds,
            queue_limit=self.stream_queue_limit,
            max_item_bytes=self.max_reply_bytes,  # a work item is a reply of the stream
            on_change=on_change,
        )

    def __post_init__(self) -> None:
        for name in ("max_unary_calls", "max_waits", "max_streams", "stream_queue_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"SidecarLimits.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_wait_seconds", "wait_missing_poll_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SidecarLimits.{name} must be positive, got {getattr(self, name)}")
        if not 1 <= self.max_page_size <= 1000:  # the table service's page limit
            raise ValueError(f"SidecarLimits.max_page_size must be from 1 to 1000, got {self.max_page_size}")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise ValueError("SidecarLimits.default_page_size must be from 1 to max_page_size")
        for name in ("work_item_timeout_seconds", "activity_timeout_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"SidecarLimits.{name} must be positive or None, got {value}")
        if self.max_reply_bytes < 64 * 1024:
            raise ValueError(
                f"SidecarLimits.max_reply_bytes must be at least 64 KiB, got {self.max_reply_bytes}"
            )


# Worker RPCs that answer work the runtime waits for: never refused, or workers would starve.
_UNCAPPED = frozenset(
    {
        "Hello",
        "CompleteActivityTask",
        "CompleteOrchestratorTask",
        "CompleteEntityTask",
        "AbandonTaskActivityWorkItem",
        "AbandonTaskOrchestratorWorkItem",
        "AbandonTaskEntityWorkItem",
    }
)
_WAITS = frozenset({"WaitForInstanceStart", "WaitForInstanceCompletion"})
_STREAMS = frozenset({"GetWorkItems"})


class _Cap:
    """A count of calls in progress, refused beyond ``limit`` (no queueing: callers retry)."""

    def __init__(self, what: str, limit: int) -> None:
        self.what, self.limit, self.open = what, limit, 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give(self) -> None:
        self.open -= 1


class CallCaps(grpc.aio.ServerInterceptor):
    """The server interceptor that counts calls by kind and refuses those beyond their cap."""

    def __init__(self, limits: SidecarLimits) -> None:
        self.unary = _Cap("client calls", limits.max_unary_calls)
        self.waits = _Cap("waits for an instance", limits.max_waits)
        self.streams = _Cap("work-item streams", limits.max_streams)

    def _cap_for(self, method: str) -> _Cap | None:
        service, _, name = method.lstrip("/").partition("/")
        if service != SERVICE_NAME or name in _UNCAPPED:
            return None
        if name in _WAITS:
            return self.waits
        if name in _STREAMS:
            return self.streams
        return self.unary

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        cap = self._cap_for(handler_call_details.method)
        if handler is None or cap is None:
            return handler
        if handler.unary_unary is not None:
            return _wrap_unary(handler, cap)
        if handler.unary_stream is not None:
            return _wrap_stream(handler, cap)
        return handler


async def _refuse(cap: _Cap, context: grpc.aio.ServicerContext) -> None:
    await context.abort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the sidecar serves at most {cap.limit} {cap.what} at once; try again shortly",
    )


def _wrap_unary(handler: Any, cap: _Cap) -> Any:
    inner = handler.unary_unary

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not cap.take():
            await _refuse(cap, context)
        try:
            return await inner(request, context)
        finally:
            cap.give()

    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _wrap_stream(handler: Any, cap: _Cap) -> Any:
    inner = handler.unary_stream

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not cap.take():
            await _refuse(cap, context)
        try:
            async for reply in inner(request, context):
                yield reply
        finally:
            cap.give()

    return grpc.unary_stream_rpc_method_handler(
        call,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
