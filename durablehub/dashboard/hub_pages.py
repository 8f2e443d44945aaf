"""Hub health: each queue's length and the age of its oldest visible message, the partitions
with their lease owner and epoch, the workers holding them, and the poison queue with its
records and a requeue -- read with the same storage adapters as ``durablehub hub info`` and
``durablehub poison``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from durablehub.dashboard.forms import context, forged, html_errors, now, read_form
from durablehub.dashboard.pages import fragment, render
from durablehub.http.settings import HttpSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.poison import RequeueResult


@dataclass(frozen=True)
class QueueRow:
    name: str
    kind: str
    length: int
    oldest: datetime | None

    def age(self, at: datetime) -> timedelta | None:
        return at - self.oldest if self.oldest is not None else None


@dataclass(frozen=True)
class WorkerRow:
    owner: str
    partitions: list[str]


async def _health(hub: AsyncTaskHub) -> dict[str, Any]:
    await hub.open()
    queues = [
        QueueRow(q.name, kind, await q.approximate_count(), await q.oldest_visible())
        for q, kind in [*((c, "control") for c in hub.control_queues), (hub.work_items, "work items")]
    ]
    leases = await hub.leases.list()
    workers: dict[str, list[str]] = {}
    for state in leases:
        if state.leased and state.lease.owner:
            workers.setdefault(state.lease.owner, []).append(state.lease.partition_id)
    return {
        "queues": queues,
        "leases": leases,
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
