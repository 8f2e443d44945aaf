"""Hub health: each queue's length and the age of its oldest visible message, the partitions
with their lease owner and epoch, the workers holding them, and the poison queue with its
records and a requeue -- read with the same storage adapters as ``durablehub hub info`` and
``durablehub poison``. A hub not yet whole (a worker still making it) or with a queue deleted
under it shows what is missing, as ``hub info`` does, instead of failing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from fastapi import APIRouter, Request
from starlette.responses import Response

from durablehub.dashboard.forms import context, forged, html_errors, now, read_form
from durablehub.dashboard.pages import fragment, render
from durablehub.http.settings import HttpSettings
from durablehub.taskhub import on_demand
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.leases import LeaseState
from durablehub.taskhub.aio.poison import RequeueResult
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue


@dataclass(frozen=True)
class QueueRow:
    name: str
    kind: str
    length: int | None  # None: the queue does not exist
    oldest: datetime | None

    @property
    def missing(self) -> bool:
        return self.length is None

    def age(self, at: datetime) -> timedelta | None:
        return at - self.oldest if self.oldest is not None else None


@dataclass(frozen=True)
class WorkerRow:
    owner: str
    partitions: list[str]


async def _queue_row(queue: AsyncTaskHubQueue, kind: str) -> QueueRow:
    try:
        return QueueRow(queue.name, kind, await queue.approximate_count(), await queue.oldest_visible())
    except ResourceNotFoundError as exc:
        if not on_demand.queue(queue.name).is_missing(exc):
            raise
        return QueueRow(queue.name, kind, None, None)


async def _leases(hub: AsyncTaskHub) -> tuple[list[LeaseState], list[str]]:
    """Every partition's lease, and the names of those not made yet. A listing that meets a
    missing lease blob is read again blob by blob: only a hub that is not whole pays for it."""
    names = hub.names
    container = on_demand.container(names.leases_container)
    blobs = [on_demand.blob(names.leases_container, names.lease_blob(p)) for p in names.control_queues]
    try:
        return await hub.leases.list(), []
    except ResourceNotFoundError as exc:
        if container.is_missing(exc):  # the hub was deleted after it was opened
            return [], [container.name]
        if not blobs[0].is_missing(exc):
            raise
    leases: list[LeaseState] = []
    missing: list[str] = []
    for partition_id, blob in zip(names.control_queues, blobs, strict=True):
        try:
            leases.append(await hub.leases.get(partition_id))
        except ResourceNotFoundError as exc:
            if not (blob.is_missing(exc) or container.is_missing(exc)):
                raise
            missing.append(blob.name)
    return leases, missing


async def _health(hub: AsyncTaskHub) -> dict[str, Any]:
    await hub.open()
    kinds = [*((c, "control") for c in hub.control_queues), (hub.work_items, "work items")]
    queues = [await _queue_row(q, kind) for q, kind in kinds]
    leases, missing_leases = await _leases(hub)
    held = {state.lease.partition_id for state in leases}
    workers: dict[str, list[str]] = {}
    for state in leases:
        if state.leased and state.lease.owner:
            workers.setdefault(state.lease.owner, []).append(state.lease.partition_id)
    return {
        "queues": queues,
        "leases": leases,
        "no_lease": [p for p in hub.names.control_queues if p not in held],
        "missing": [q.name for q in queues if q.missing] + missing_leases,
        "workers": [WorkerRow(owner, parts) for owner, parts in sorted(workers.items())],
        "partition_count": hub.names.partition_count,
    }


def register(pages: APIRouter, http: HttpSettings) -> None:
    async def page(request: Request, *, result: RequeueResult | None = None) -> Response:
        hub = await context(request).hub()
        values = await _health(hub)
        if fragment(request) == "health":
            return render(request, http, "_health.html", at=now(), **values)
        poison = await hub.poison.peek()
        return render(request, http, "hub.html", at=now(), poison=poison, requeue=result, **values)

    @pages.get("/hub")
    @html_errors
    async def hub_health(request: Request) -> Response:
        return await page(request)

    @pages.post("/hub/requeue")
    @html_errors
    async def requeue(request: Request) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        ids = None if form.get("all") == "1" else form.all("id")
        if ids is not None and not ids:
            raise ValueError("choose the messages to requeue, or all of them")
        hub = await context(request).hub()
        await hub.open()  # a bare message's queue depends on the hub's real partition count
        result = await hub.poison.requeue(ids, force=form.get("force") == "1")
        return await page(request, result=result)
