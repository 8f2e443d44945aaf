"""Storage fault injection: an azure-core pipeline policy that makes requests fail at random.

``FaultInjector`` decides, per storage request and with a seeded random generator, whether it
fails and how: a 500 or 503 answer, a 409 or 412 (only where a conflict can happen: table
batches, conditional updates), a 404 (only on queue-message deletes and renewals, where a pop
receipt can go stale), or a read timeout (``ServiceResponseError``) either *before* the request
is sent (it had no effect) or *after* it was sent and succeeded (it took effect, the client saw
an error: a message enqueued twice on retry, a row written whose answer was lost). Faults that
would be lies (a 404 for a row that exists, a 409 on a fresh insert) are never injected.

Its policy factories (``injector.policy`` for sync clients, ``injector.async_policy`` for async
ones; each is called once per service client with ``"blob"``, ``"queue"`` or ``"table"``) are
passed to ``TaskHub``/``AsyncTaskHub`` (``policies=``) or ``Worker`` (``storage_policies=``),
which put the policies inside the SDK's retry loop, next to the transport: with
``retry_total=0`` in the settings every fault reaches durablehub's code; with SDK retries on,
the SDK retries what it considers transient and only the rest (and retried duplicates) reach it.

    injector = FaultInjector(rate=0.05, seed=7)
    with Worker(app, settings, storage_policies=[injector.async_policy]): ...
    print(injector.summary())
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, HTTPPolicy
from azure.core.pipeline.transport import AsyncHttpResponse, HttpResponse
from azure.core.utils import CaseInsensitiveDict

from durablehub.taskhub.metering import classify

__all__ = ["Fault", "FaultInjector"]


class Fault(StrEnum):
    SERVER_ERROR = "500"
    SERVER_BUSY = "503"
    CONFLICT = "409"
    PRECONDITION_FAILED = "412"
    NOT_FOUND = "404"
    TIMEOUT_BEFORE_SEND = "timeout-before-send"  # the request never reached the service
    TIMEOUT_AFTER_SEND = "timeout-after-send"  # it took effect; the answer was lost


_ALWAYS = (Fault.SERVER_ERROR, Fault.SERVER_BUSY, Fault.TIMEOUT_BEFORE_SEND, Fault.TIMEOUT_AFTER_SEND)
_STATUS = {
    Fault.SERVER_ERROR: 500,
    Fault.SERVER_BUSY: 503,
    Fault.CONFLICT: 409,
    Fault.PRECONDITION_FAILED: 412,
    Fault.NOT_FOUND: 404,
}
# (status, service) -> the error code the service would send.
_ERROR_CODES = {
    (500, "table"): "InternalError",
    (500, "blob"): "InternalError",
    (500, "queue"): "InternalError",
    (503, "table"): "ServerBusy",
    (503, "blob"): "ServerBusy",
    (503, "queue"): "ServerBusy",
    (409, "table"): "EntityAlreadyExists",
    (412, "table"): "UpdateConditionNotSatisfied",
    (404, "queue"): "MessageNotFound",
}


def plausible_faults(operation: str, headers: Any) -> tuple[Fault, ...]:
    """Which faults the service could really answer ``operation`` (``metering.classify``) with."""
    extra: tuple[Fault, ...] = ()
    if operation == "table.batch":  # a sentinel insert race (409) or a stale sentinel ETag (412)
        extra = (Fault.CONFLICT, Fault.PRECONDITION_FAILED)
    elif operation.startswith("table.") and headers.get("If-Match", "*") != "*":
        extra = (Fault.PRECONDITION_FAILED,)
    elif operation in ("queue.delete_message", "queue.update_message"):
        extra = (Fault.NOT_FOUND,)  # the pop receipt went stale
    return (*_ALWAYS, *extra)


class FaultInjector:
    """Seeded random storage faults, counted per kind. Thread-safe; one injector can serve
    sync and async clients at once. ``active`` turns injection on and off.

    ``rate``: the chance that a request fails; ``faults``: the kinds allowed (each request gets
    one of those plausible for it, uniformly); ``services``/``operations``: which requests
    (operations as ``metering.classify`` names them, e.g. ``table.upsert_merge``); ``skip``:
    how many of those requests to let through before injecting (to hit, say, the second
    transaction of a history commit); ``limit``: how many faults in all.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int = 0,
        faults: Iterable[Fault] | None = None,
        services: Iterable[str] = ("blob", "queue", "table"),
        operations: Iterable[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self.active = True
        self._allowed = frozenset(faults) if faults is not None else frozenset(Fault)
        self._services = frozenset(services)
        self._operations = frozenset(operations) if operations is not None else None
        self._skip = skip  # matching requests still to let through before the first fault
        self._limit = limit  # at most this many faults in all, then none
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[Fault] = Counter()
        self._by_operation: Counter[str] = Counter()
        self.requests = 0

    def policy(self, service: str) -> FaultInjectionPolicy:
        """A policy for one sync service client (``blob``, ``queue`` or ``table``)."""
        return FaultInjectionPolicy(self, service)

    def async_policy(self, service: str) -> AsyncFaultInjectionPolicy:
        """A policy for one async service client (``blob``, ``queue`` or ``table``)."""
        return AsyncFaultInjectionPolicy(self, service)

    def choose(self, service: str, request: Any) -> tuple[Fault | None, str]:
        """The fault to inject into ``request`` (None: let it through) and its operation name."""
        operation = classify(service, request.method, request.url)
        if not self.active or service not in self._services:
            return None, operation
        if self._operations is not None and operation not in self._operations:
            return None, operation
        candidates = [f for f in plausible_faults(operation, request.headers) if f in self._allowed]
        with self._lock:
            self.requests += 1
            if self._skip > 0:
                self._skip -= 1
                return None, operation
            spent = self._limit is not None and sum(self._counts.values()) >= self._limit
            if spent or not candidates or self._random.random() >= self.rate:
                return None, operation
            fault = self._random.choice(candidates)
            self._counts[fault] += 1
            self._by_operation[f"{operation} {fault}"] += 1
        return fault, operation

    @property
    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        with self._lock:
            return {str(kind): n for kind, n in sorted(self._counts.items())}

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._by_operation.items()))

    def summary(self) -> str:
        counts = ", ".join(f"{kind}: {n}" for kind, n in self.counts.items()) or "none"
        return f"{self.total} faults in {self.requests} requests at rate {self.rate} ({counts})"


def _error_body(status: int, service: str, operation: str) -> tuple[bytes, str, str]:
    code = _ERROR_CODES.get(
        (status, service), {404: "ResourceNotFound", 409: "Conflict"}.get(status, "Error")
    )
    message = f"durablehub fault injection: {status} {code} on {operation}"
    if service == "table":
        body = {"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}}
        return json.dumps(body).encode(), "application/json;odata=minimalmetadata", code
    xml = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
    xml += "</Error>"
    return xml.encode(), "application/xml", code


def _fill(response: Any, status: int, service: str, operation: str) -> None:
    body, content_type, code = _error_body(status, service, operation)
    response.status_code = status
    response.reason = {500: "Internal Server Error", 503: "Service Unavailable", 409: "Conflict"}.get(
        status, {412: "Precondition Failed", 404: "Not Found"}.get(status, "Error")
    )
    response.content_type = content_type
    response.headers = CaseInsensitiveDict(
        {"Content-Type": content_type, "Content-Length": str(len(body)), "x-ms-error-code": code}
    )
    response._body = body


class _FaultResponse(HttpResponse):
    """An error answer the service never sent (sync pipelines)."""

    _body: bytes

    def body(self) -> bytes:
        return self._body

    def read(self) -> bytes:
        return self._body

    @property
    def content(self) -> bytes:
        return self._body

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Any:
        return iter([self._body])


class _AsyncFaultResponse(AsyncHttpResponse):
    """An error answer the service never sent (async pipelines)."""

    _body: bytes

    def body(self) -> bytes:
        return self._body

    async def read(self) -> bytes:
        return self._body

    async def load_body(self) -> None:
        return None

    @property
    def content(self) -> bytes:
        return self._body

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Any:
        async def chunks() -> Any:
            yield self._body

        return chunks()


def _timeout(operation: str, *, sent: bool) -> ServiceResponseError:
    when = "after the request was sent and took effect" if sent else "before the request was sent"
    return ServiceResponseError(f"durablehub fault injection: read timed out on {operation} ({when})")


class FaultInjectionPolicy(HTTPPolicy):
    """The injector's policy for sync clients (place it inside the retry loop)."""

    def __init__(self, injector: FaultInjector, service: str) -> None:
        super().__init__()
        self.injector = injector
        self.service = service

    def send(self, request: PipelineRequest) -> PipelineResponse:
        service = self.service
        fault, operation = self.injector.choose(service, request.http_request)
        if fault is None:
            return self.next.send(request)
        if fault is Fault.TIMEOUT_BEFORE_SEND:
            raise _timeout(operation, sent=False)
        if fault is Fault.TIMEOUT_AFTER_SEND:
            self.next.send(request)
            raise _timeout(operation, sent=True)
        response = _FaultResponse(request.http_request, None)
        _fill(response, _STATUS[fault], service, operation)
        return PipelineResponse(request.http_request, response, request.context)


class AsyncFaultInjectionPolicy(AsyncHTTPPolicy):
    """The injector's policy for async clients (place it inside the retry loop)."""

    def __init__(self, injector: FaultInjector, service: str) -> None:
        super().__init__()
        self.injector = injector
        self.service = service

    async def send(self, request: PipelineRequest) -> PipelineResponse:
        service = self.service
        fault, operation = self.injector.choose(service, request.http_request)
        if fault is None:
            return await self.next.send(request)
        if fault is Fault.TIMEOUT_BEFORE_SEND:
            raise _timeout(operation, sent=False)
        if fault is Fault.TIMEOUT_AFTER_SEND:
            await self.next.send(request)
            raise _timeout(operation, sent=True)
        response = _AsyncFaultResponse(request.http_request, None)
        _fill(response, _STATUS[fault], service, operation)
        return PipelineResponse(request.http_request, response, request.context)
