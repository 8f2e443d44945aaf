"""The entities: listed by name prefix with their lock holder and backlog, one entity's state,
signalling one, and cleaning entity storage -- each through the client, as the API does."""

from __future__ import annotations

import functools
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from durablehub.dashboard import views
from durablehub.dashboard.forms import Form, context, download, forged, html_errors, json_field, read_form
from durablehub.dashboard.pages import base, render
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.metadata import EntityQuery
from durablehub.http.errors import HANDLED_ERRORS, error_status
from durablehub.http.settings import HttpSettings

NOTICES = {
    "signal": "Signal sent: the entity runs the operation within a poll.",
    "clean": "Entity storage cleaned.",
}


def _one(params: dict[str, list[str]], name: str) -> str:
    return (params.get(name) or [""])[-1].strip()


def _notice(params: dict[str, list[str]]) -> str | None:
    done = _one(params, "done")
    if done == "clean":  # counts as numbers, never text from the request
        removed, released = (_one(params, n) for n in ("removed", "released"))
        if removed.isdigit() and released.isdigit():
            return (
                f"Entity storage cleaned: {int(removed)} empty entities removed, "
                f"{int(released)} locks released."
            )
    return NOTICES.get(done)


def entity_url(home: str, entity: EntityInstanceId, **query: str) -> str:
    path = f"{home}/entities/{quote(entity.name, safe='')}/{quote(entity.key, safe='')}"
    return f"{path}?{urlencode(query)}" if query else path


def register(pages: APIRouter, http: HttpSettings) -> None:
    @pages.get("/entities")
    @html_errors
    async def entity_list(request: Request) -> Response:
        params = parse_qs(request.url.query)
        prefix = _one(params, "prefix")
        with_state = _one(params, "state") == "1"
        size_text = _one(params, "size") or "50"
        if not size_text.isdigit() or int(size_text) not in views.PAGE_SIZES:
            raise ValueError(f"page size must be one of {', '.join(map(str, views.PAGE_SIZES))}")
        token = _one(params, "page") or None
        query = EntityQuery(
            instance_id_starts_with=prefix or None,
            include_state=with_state,
            include_transient=True,  # an entity with only waiting requests or a lock is worth seeing
            page_size=int(size_text),
            continuation_token=token,
        )
        page = await (await context(request).client()).query_entities(query)
        kept = {k: v for k, v in (("prefix", prefix), ("state", "1" if with_state else "")) if v}
        if size_text != "50":
            kept["size"] = size_text
        next_url = f"{base(request)}/entities?{urlencode({**kept, 'page': page.continuation_token})}"
        return render(
            request,
            http,
            "entities.html",
            entities=page.items,
            name_prefix=prefix,  # not 'prefix': that is the dashboard's base path in every template
            with_state=with_state,
            page_sizes=views.PAGE_SIZES,
            size=int(size_text),
            next_url=next_url if page.continuation_token else None,
            first_url=f"{base(request)}/entities?{urlencode(kept)}" if token else None,
            entity_url=functools.partial(entity_url, base(request)),
            short=views.short_json,
            notice=_notice(params),
        )

    @pages.get("/entities/{name}/{key}")
    @html_errors
    async def entity_page(request: Request, name: str, key: str) -> Response:
        return await _entity(request, EntityInstanceId(name, key))

    async def _entity(
        request: Request,
        entity: EntityInstanceId,
        *,
        error: str | None = None,
        status_code: int = 200,
        refused: Form | None = None,
    ) -> Response:
        metadata = await (await context(request).client()).get_entity(entity, include_state=True)
        if metadata is None and error is None:
            error, status_code = f"no entity {str(entity)!r} (it does not exist or has no state)", 404
        return render(
            request,
            http,
            "entity.html",
            status_code=status_code,
            entity=entity,
            metadata=metadata,
            entity_url=functools.partial(entity_url, base(request)),
            shown_json=views.shown_json,
            notice=NOTICES.get(request.query_params.get("done", "")),
            error=error,
            refused_form=refused,  # a signal that failed: its form, as it was sent
        )

    @pages.get("/entities/{name}/{key}/state")
    @html_errors
    async def state(request: Request, name: str, key: str) -> Response:
        """The state whole, as stored (the page shows its start)."""
        entity = EntityInstanceId(name, key)
        metadata = await (await context(request).client()).get_entity(entity, include_state=True)
        if metadata is None:
            return render(request, http, "error.html", status_code=404, error=f"no entity {str(entity)!r}")
        return download(metadata.serialized_state, f"{entity.name}-{entity.key}-state")

    @pages.post("/entities/{name}/{key}/signal")
    @html_errors
    async def signal(request: Request, name: str, key: str) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        entity = EntityInstanceId(name, key)
        try:
            operation = form.get("operation").strip()
            if not operation:
                raise ValueError("the signal needs an operation name")
            data = json_field(form.get("input"), "the operation input")
            await (await context(request).client()).signal_entity(entity, operation, data)
        except HANDLED_ERRORS as exc:
            status = error_status(exc) or 500
            return await _entity(request, entity, error=str(exc), status_code=status, refused=form)
        return RedirectResponse(entity_url(base(request), entity, done="signal"), status_code=303)

    @pages.post("/entities-clean")
    @html_errors
    async def clean(request: Request) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        result = await (await context(request).client()).clean_entity_storage(
            remove_empty_entities=form.get("empty") == "1", release_orphaned_locks=form.get("locks") == "1"
        )
        query = urlencode(
            {
                "done": "clean",
                "removed": result.empty_entities_removed,
                "released": result.orphaned_locks_released,
            }
        )
        return RedirectResponse(f"{base(request)}/entities?{query}", status_code=303)
