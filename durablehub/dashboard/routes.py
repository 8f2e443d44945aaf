"""The dashboard's pages and forms under ``/dashboard``.

Every page reads through the same ``AsyncDurableClient`` as the HTTP API
(``ManagementContext.client()``), and every action calls the same client method the matching
API route calls: there is one implementation of each management operation. Errors are shown
as the API gives them (its status code and message, ``http.errors.error_status``).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from durablehub.async_client import AsyncDurableClient
from durablehub.dashboard import entity_pages, hub_pages, session, timeline, views
from durablehub.dashboard.forms import (
    Form,
    context,
    download,
    error_page,
    forged,
    html_errors,
    json_field,
    now,
    read_form,
)
from durablehub.dashboard.pages import PREFIX, SECURITY_HEADERS, base, fragment, render
from durablehub.engine import history as ev
from durablehub.errors import OrchestrationNotFoundError
from durablehub.http.auth import authentication
from durablehub.http.errors import HANDLED_ERRORS, error_status
from durablehub.http.settings import HttpSettings
from durablehub.models import OrchestrationStatus
from durablehub.state import OrchestrationState

STATIC_FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
# What a finished action says, by the action's name in the redirect (never text from a request).
NOTICES = {
    "raise-event": "Event sent: the instance receives it within a poll.",
    "terminate": "Terminate sent: the worker applies it within a poll.",
    "suspend": "Suspend sent.",
    "resume": "Resume sent.",
    "rewind": "Rewind sent: the instance runs its failed work again.",
    "restart": "Restarted.",
    "purge": "Purged.",
    "start": "Started.",
}
PAYLOADS = {
    "input": "serialized_input",
    "output": "serialized_output",
    "custom-status": "serialized_custom_status",
}
COUNT_LIMIT = 10_000  # rows read to count instances by status; more are shown as "10000+"
NAME_SCAN_LIMIT = 10_000  # rows a name-filtered page reads at most before showing what it found


class HistoryCache:
    """The histories of the last few instances shown, by instance, execution and last update:
    paging through a history of 10,000 events, or refreshing a finished instance, reads it from
    storage once. A new episode, rewind or restart changes the key, so nothing stale is shown."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str | None, datetime], list[ev.HistoryEvent]] = OrderedDict()

    async def get(self, client: AsyncDurableClient, state: OrchestrationState) -> list[ev.HistoryEvent]:
        key = (state.instance_id, state.execution_id, state.last_updated_at)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        history = await client.get_orchestration_history(state.instance_id, execution_id=state.execution_id)
        self._entries[key] = history
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return history

    def latest(self, state: OrchestrationState) -> list[ev.HistoryEvent] | None:
        """Any history read of this execution, however old: enough for what does not change
        within an execution (who started it)."""
        for (instance_id, execution_id, _), history in reversed(self._entries.items()):
            if (instance_id, execution_id) == (state.instance_id, state.execution_id):
                return history
        return None


class SignInRequired(Exception):
    """A dashboard request without a valid session (``auth=key``)."""


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _safe_next(value: str | None, request: Request) -> str:
    """Where to go after signing in: a dashboard path of this server, nothing else."""
    home = f"{base(request)}/"
    if value and value.startswith(home) and not value.startswith("//") and "\\" not in value:
        return value
    return home


def create_router(http: HttpSettings) -> APIRouter:
    """The dashboard, behind the API's authentication: a session cookie for the key, the same
    Entra ID dependency as the API, or nothing (loopback only) when authentication is off."""
    if http.auth == "key":

        async def require_session(request: Request) -> None:
            if not session.is_signed_in(request, http):
                raise SignInRequired

        guard = [Depends(require_session)]
    else:
        auth = authentication(http)
        guard = [Depends(auth)] if auth is not None else []

    histories = HistoryCache()
    public = APIRouter(prefix=PREFIX, include_in_schema=False)
    pages = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=guard)

    @public.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        body = resources.files("durablehub.dashboard").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    @public.get("")
    async def root(request: Request) -> Response:
        return RedirectResponse(f"{base(request)}/", status_code=307)

    @public.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        if http.auth != "key":
            return RedirectResponse(_safe_next(next, request), status_code=303)
        return render(request, http, "login.html", next=_safe_next(next, request))

    @public.post("/login")
    async def login(request: Request) -> Response:
        if http.auth != "key":
            return RedirectResponse(f"{base(request)}/", status_code=303)
        form = await read_form(request)
        target = _safe_next(form.get("next"), request)
        if not session.csrf_ok(request, form.get(session.CSRF_FIELD)):
            return render(
                request,
                http,
                "login.html",
                status_code=403,
                next=target,
                error="the form has expired or came from another site: sign in again",
            )
        if not form.get("key"):
            return render(
                request, http, "login.html", status_code=401, next=target, error="a key is required"
            )
        attempts, client = context(request).key_attempts, _client_address(request)
        if (wait := attempts.retry_after(client)) is not None:
            held_back = render(
                request,
                http,
                "login.html",
                status_code=429,
                next=target,
                error=f"too many wrong keys from this client: try again in {wait} s",
            )
            held_back.headers["Retry-After"] = str(wait)
            return held_back
        if not session.key_matches(form.get("key"), http):
            attempts.failed(client)
            return render(
                request, http, "login.html", status_code=401, next=target, error="the key is not valid"
            )
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        session.set_session(response, request, http)
        return response

    @public.post("/logout")
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        response = RedirectResponse(f"{base(request)}/login", status_code=303)
        session.sign_out(response, request, http)
        return response

    # ------------------------------------------------------------------ instance list

    @pages.get("/")
    @html_errors
    async def instance_list(request: Request) -> Response:
        return await _list(request, views.ListFilters.from_query(parse_qs(request.url.query)))

    async def _list(
        request: Request,
        filters: views.ListFilters,
        *,
        error: str | None = None,
        status_code: int = 200,
        refused: tuple[str, Form] | None = None,
    ) -> Response:
        client = await context(request).client()
        at = now()
        items, next_token = await _instances_page(client, filters, at)
        items = _sorted(items, filters, at)
        rows = [(s, views.instance_duration(s, at)) for s in items]
        values: dict[str, Any] = dict(
            filters=filters,
            rows=rows,
            next_token=next_token,
            statuses=views.STATUSES,
            ranges=views.RANGES,
            page_sizes=views.PAGE_SIZES,
            refresh_choices=views.REFRESH_SECONDS,
            short=views.short_json,
            failure_text=views.failure_text,
            notice=_list_notice(request),
            orchestrators=_orchestrators(request),
            error=error,
            refused_action=refused[0] if refused else None,
            refused_form=refused[1] if refused else Form({}),
        )
        if fragment(request) == "instances":
            return render(request, http, "_instances.html", **values)
        return render(request, http, "instances.html", status_code=status_code, **values)

    async def _list_refusing(request: Request, action: str, form: Form, exc: Exception) -> Response:
        """The list again with the error, and the form that failed open as it was sent."""
        status = error_status(exc) or 500
        return await _list(
            request, views.ListFilters(), error=str(exc), status_code=status, refused=(action, form)
        )

    @pages.post("/start")
    @html_errors
    async def start(request: Request) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        try:
            name = form.get("name").strip()
            if not name:
                raise ValueError("the orchestration needs a name")
            context(request).check_orchestrator(name)  # as the API: a name the served App lacks
            data = json_field(form.get("input"), "the input")
            client = await context(request).client()
            iid = await client.schedule_new_orchestration(
                name, input=data, instance_id=form.get("instance_id").strip() or None
            )
        except HANDLED_ERRORS as exc:
            return await _list_refusing(request, "start", form, exc)
        return RedirectResponse(_instance_url(base(request), iid, "start"), status_code=303)

    @pages.post("/purge")
    @html_errors
    async def purge_by_filter(request: Request) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        try:
            filters = views.ListFilters.from_query(
                {
                    "status": form.all("status"),
                    "range": ["custom"],
                    "from": [form.get("from")],
                    "to": [form.get("to")],
                }
            )
            if filters.created_to is None:
                raise ValueError("give the end of the range ('created before'): purging has no undo")
            result = await (await context(request).client()).purge_orchestrations_by(
                created_time_from=filters.created_from,
                created_time_to=filters.created_to,
                runtime_status=filters.statuses or None,
            )
        except HANDLED_ERRORS as exc:
            return await _list_refusing(request, "purge-by", form, exc)
        query = urlencode({"done": "purge-by", "n": result.deleted_instance_count})
        return RedirectResponse(f"{base(request)}/?{query}", status_code=303)

    @pages.get("/counts")
    @html_errors
    async def counts(request: Request) -> Response:
        """Instances by status for the list's filters (statuses aside), up to COUNT_LIMIT rows."""
        filters = views.ListFilters.from_query(parse_qs(request.url.query))
        client = await context(request).client()
        query = filters.query(now(), page_size=1000, statuses=False)
        found: dict[OrchestrationStatus, int] = {}
        seen, more = 0, False
        while True:
            page = await client.query_orchestrations(query)
            for state in page.items:
                if not filters.name_prefix or state.name.lower().startswith(filters.name_prefix.lower()):
                    found[state.runtime_status] = found.get(state.runtime_status, 0) + 1
            seen += len(page.items)
            if page.continuation_token is None:
                break
            if seen >= COUNT_LIMIT:
                more = True
                break
            query = dataclasses.replace(query, continuation_token=page.continuation_token)
        counts = [(s, found.get(s, 0)) for s in views.STATUSES]
        template = "_counts.html" if fragment(request) else "counts.html"
        return render(
            request, http, template, filters=filters, counts=counts, more=more, total=sum(found.values())
        )

    # ------------------------------------------------------------------ one instance

    @pages.get("/instances/{instance_id}")
    @html_errors
    async def instance_page(request: Request, instance_id: str, hpage: int = 1) -> Response:
        return await _instance(request, instance_id, hpage=hpage)

    async def _instance(
        request: Request,
        instance_id: str,
        *,
        hpage: int = 1,
        error: str | None = None,
        status_code: int = 200,
        refused: tuple[str, Form] | None = None,
    ) -> Response:
        client = await context(request).client()
        state = await client.get_orchestration_state(instance_id, fetch_payloads=True)
        if state is None:
            return render(
                request, http, "error.html", status_code=404, error=f"no instance {instance_id!r} in this hub"
            )
        at = now()
        live = not state.runtime_status.is_terminal
        name = fragment(request)
        if name == "summary":  # refreshed every few seconds: no history read for it
            known = histories.latest(state)
            history = known if known is not None else await histories.get(client, state)
            summary: dict[str, Any] = dict(state=state, live=live, parent=_parent_of(history))
            return render(
                request, http, "_summary.html", duration=views.instance_duration(state, at), **summary
            )
        history = await histories.get(client, state)
        chart = timeline.build(history, at, live=live)
        values: dict[str, Any] = dict(
            state=state,
            live=live,
            now=at,
            duration=views.instance_duration(state, at),
            chart=chart,
            timeline_refresh=timeline.refresh_seconds(len(history)),
            drawn=timeline.layout(chart, at),
            ticks=timeline.ticks(chart),
            chart_height=timeline.height(chart),
            geometry=timeline,
            shown_json=views.shown_json,
            parent=_parent_of(history),
            history=views.history_page(history, hpage),
            notice=NOTICES.get(request.query_params.get("done", "")),
            error=error,
            statuses=OrchestrationStatus,
            # An action that failed: its form is shown open, filled in as it was sent.
            refused_action=refused[0] if refused else None,
            refused_form=refused[1] if refused else Form({}),
        )
        if name == "timeline":
            return render(request, http, "_timeline.html", **values)
        return render(request, http, "instance.html", status_code=status_code, **values)

    @pages.get("/instances/{instance_id}/payload/{which}")
    @html_errors
    async def payload(request: Request, instance_id: str, which: str) -> Response:
        """A payload whole, as stored (the page shows its start)."""
        if which not in PAYLOADS:
            return render(request, http, "error.html", status_code=404, error=f"no payload {which!r}")
        state = await (await context(request).client()).get_orchestration_state(instance_id)
        if state is None:
            raise OrchestrationNotFoundError(instance_id)
        return download(getattr(state, PAYLOADS[which]), f"{instance_id}-{which}")

    @pages.post("/instances/{instance_id}/{action}")
    @html_errors
    async def instance_action(request: Request, instance_id: str, action: str) -> Response:
        form = await read_form(request)
        if refusal := forged(request, form):
            return refusal
        client = await context(request).client()
        try:
            target = await _act(client, base(request), instance_id, action, form)
        except HANDLED_ERRORS as exc:
            status = error_status(exc) or 500
            try:
                return await _instance(
                    request, instance_id, error=str(exc), status_code=status, refused=(action, form)
                )
            except HANDLED_ERRORS:
                return error_page(request, exc)
        return RedirectResponse(target, status_code=303)

    entity_pages.register(pages, http)
    hub_pages.register(pages, http)
    router = APIRouter()
    router.include_router(public)
    router.include_router(pages)
    return router


async def _instances_page(
    client: AsyncDurableClient, filters: views.ListFilters, at: datetime
) -> tuple[list[OrchestrationState], str | None]:
    """A page of the list and the token of the next. The table can only filter ids by prefix,
    so a name filter reads table pages until the page is full (it may then hold a few more
    than its size, the rest of the last table page) or NAME_SCAN_LIMIT rows were read."""
    query = filters.query(at)
    if not filters.name_prefix:
        page = await client.query_orchestrations(query)
        return page.items, page.continuation_token
    wanted = filters.name_prefix.lower()
    found: list[OrchestrationState] = []
    scanned = 0
    while True:
        page = await client.query_orchestrations(query)
        found += [s for s in page.items if s.name.lower().startswith(wanted)]
        scanned += len(page.items)
        if page.continuation_token is None or len(found) >= filters.page_size or scanned >= NAME_SCAN_LIMIT:
            return found, page.continuation_token
        query = dataclasses.replace(query, continuation_token=page.continuation_token)


def _orchestrators(request: Request) -> list[str]:
    """The served App's orchestrators (``serve --app``), offered by the start form."""
    app = context(request).app
    return sorted(app.orchestrator_names) if app is not None else []


def _list_notice(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    count = request.query_params.get("n", "")
    if done == "purge-by" and count.isdigit():  # a number, never text from the request
        return f"Purged {int(count)} finished instances."
    return NOTICES.get(done)


def _instance_url(home: str, instance_id: str, done: str) -> str:
    return f"{home}/instances/{quote(instance_id, safe='')}?{urlencode({'done': done})}"


async def _act(client: AsyncDurableClient, home: str, instance_id: str, action: str, form: Form) -> str:
    """Run one action through the client; the URL to show next.

    Raises:
        ValueError: an unknown action or unusable input; or the client's errors.
    """
    reason = form.get("reason", "").strip() or None
    if action == "raise-event":
        name = form.get("name", "").strip()
        if not name:
            raise ValueError("the event needs a name")
        data = json_field(form.get("data", ""), "the event data")
        await client.raise_orchestration_event(instance_id, name, data=data)
    elif action == "terminate":
        await client.terminate_orchestration(instance_id, output=reason)
    elif action == "suspend":
        await client.suspend_orchestration(instance_id, reason=reason)
    elif action == "resume":
        await client.resume_orchestration(instance_id, reason=reason)
    elif action == "rewind":
        await client.rewind_orchestration(instance_id, reason=reason)
    elif action == "restart":
        new_id = await client.restart_orchestration(
            instance_id, restart_with_new_instance_id=form.get("new_id") == "1"
        )
        return _instance_url(home, new_id, "restart")
    elif action == "purge":
        result = await client.purge_orchestration(instance_id)
        if result.deleted_instance_count == 0:
            raise ValueError(f"nothing was purged: no instance {instance_id!r}")
        return f"{home}/?done=purge"
    else:
        raise ValueError(f"unknown action {action!r}")
    return _instance_url(home, instance_id, action)


def _parent_of(history: list[ev.HistoryEvent]) -> str | None:
    for event in history:
        if isinstance(event, ev.ExecutionStarted) and event.parent_instance is not None:
            return event.parent_instance.orchestration_instance.instance_id
    return None


def _sorted(items: list[Any], filters: views.ListFilters, now: datetime) -> list[Any]:
    keys: dict[str, Callable[[Any], Any]] = {
        "id": lambda s: s.instance_id,
        "name": lambda s: s.name.lower(),
        "status": lambda s: s.runtime_status.table_name,
        "created": lambda s: s.created_at,
        "updated": lambda s: s.last_updated_at,
        "duration": lambda s: views.instance_duration(s, now),
    }
    return sorted(items, key=keys[filters.sort], reverse=filters.descending)
