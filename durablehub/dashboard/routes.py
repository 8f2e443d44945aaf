"""The dashboard's pages and forms under ``/dashboard``.

Every page reads through the same ``AsyncDurableClient`` as the HTTP API
(``ManagementContext.client()``), and every action calls the same client method the matching
API route calls: there is one implementation of each management operation. Errors are shown
as the API gives them (its status code and message, ``http.errors.error_status``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from durablehub.async_client import AsyncDurableClient
from durablehub.dashboard import session, timeline, views
from durablehub.dashboard.pages import PREFIX, SECURITY_HEADERS, fragment, render
from durablehub.engine import history as ev
from durablehub.http.auth import authentication
from durablehub.http.context import ManagementContext
from durablehub.http.errors import HANDLED_ERRORS, error_status
from durablehub.http.guards import FORM_TYPE
from durablehub.http.settings import HttpSettings
from durablehub.models import OrchestrationStatus

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
    "signin": "Signed in.",
}
COUNT_LIMIT = 10_000  # rows read to count instances by status; more are shown as "10000+"
MAX_FORM_FIELD = 1_000_000  # characters; the body itself is bounded by the HTTP limit


class SignInRequired(Exception):
    """A dashboard request without a valid session (``auth=key``)."""


def _context(request: Request) -> ManagementContext:
    return request.app.state.durablehub


def _now() -> datetime:
    return datetime.now(UTC)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a dashboard path of this server, nothing else."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (the last value of each).

    Raises:
        ValueError: another content type.
    """
    body = await request.body()
    if not body:
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise ValueError(f"the dashboard's forms are sent as {FORM_TYPE}, not {media_type or 'nothing'!r}")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    return {name: values[-1][:MAX_FORM_FIELD] for name, values in fields.items()}


def _json_field(text: str, what: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None


def html_errors(
    handler: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Client errors as a page with the API's status code and message."""

    @functools.wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(request, *args, **kwargs)
        except HANDLED_ERRORS as exc:
            status = error_status(exc) or 500
            return render(request, _context(request).http, "error.html", status_code=status, error=str(exc))

    return wrapper


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

    public = APIRouter(prefix=PREFIX, include_in_schema=False)
    pages = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=guard)

    @public.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        body = resources.files("durablehub.dashboard").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    @public.get("")
    async def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @public.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        if http.auth != "key":
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, http, "login.html", next=_safe_next(next))

    @public.post("/login")
    async def login(request: Request) -> Response:
        if http.auth != "key":
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        form = await _form(request)
        target = _safe_next(form.get("next"))
        if not session.csrf_ok(request, form.get(session.CSRF_FIELD)):
            return render(
                request,
                http,
                "login.html",
                status_code=403,
                next=target,
                error="the form has expired or came from another site: sign in again",
            )
        if not form.get("key") or not session.key_matches(form["key"], http):
            error = "the key is not valid" if form.get("key") else "a key is required"
            return render(request, http, "login.html", status_code=401, next=target, error=error)
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        session.set_session(response, request, http)
        return response

    @public.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        if not session.csrf_ok(request, form.get(session.CSRF_FIELD)):
            return render(
                request, http, "error.html", status_code=403, error="the form came from another site"
            )
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        session.clear_session(response)
        return response

    # ------------------------------------------------------------------ instance list

    @pages.get("/")
    @html_errors
    async def instance_list(request: Request) -> Response:
        filters = views.ListFilters.from_query(parse_qs(request.url.query))
        client = await _context(request).client()
        now = _now()
        page = await client.query_orchestrations(filters.query(now))
        items = page.items
        if filters.name_prefix:
            wanted = filters.name_prefix.lower()
            items = [s for s in items if s.name.lower().startswith(wanted)]
        items = _sorted(items, filters, now)
        rows = [(s, views.instance_duration(s, now)) for s in items]
        values: dict[str, Any] = dict(
            filters=filters,
            rows=rows,
            next_token=page.continuation_token,
            statuses=views.STATUSES,
            ranges=views.RANGES,
            page_sizes=views.PAGE_SIZES,
            refresh_choices=views.REFRESH_SECONDS,
            short=views.short_json,
            failure_text=views.failure_text,
            notice=NOTICES.get(request.query_params.get("done", "")),
        )
        if fragment(request) == "instances":
            return render(request, http, "_instances.html", **values)
        return render(request, http, "instances.html", **values)

    @pages.get("/counts")
    @html_errors
    async def counts(request: Request) -> Response:
        """Instances by status for the list's filters (statuses aside), up to COUNT_LIMIT rows."""
        filters = views.ListFilters.from_query(parse_qs(request.url.query))
        client = await _context(request).client()
        query = filters.query(_now(), page_size=1000, statuses=False)
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
    ) -> Response:
        client = await _context(request).client()
        state = await client.get_orchestration_state(instance_id, fetch_payloads=True)
        if state is None:
            return render(
                request, http, "error.html", status_code=404, error=f"no instance {instance_id!r} in this hub"
            )
        history = await client.get_orchestration_history(instance_id)
        now = _now()
        live = not state.runtime_status.is_terminal
        chart = timeline.build(history, now, live=live)
        values: dict[str, Any] = dict(
            state=state,
            live=live,
            now=now,
            duration=views.instance_duration(state, now),
            chart=chart,
            drawn=timeline.layout(chart, now),
            ticks=timeline.ticks(chart),
            chart_height=timeline.height(chart),
            geometry=timeline,
            pretty=views.pretty_json,
            parent=_parent_of(history),
            history=views.page_of(views.history_rows(history), hpage),
            notice=NOTICES.get(request.query_params.get("done", "")),
            error=error,
            statuses=OrchestrationStatus,
        )
        name = fragment(request)
        if name in ("timeline", "summary"):
            return render(request, http, f"_{name}.html", **values)
        return render(request, http, "instance.html", status_code=status_code, **values)

    @pages.post("/instances/{instance_id}/{action}")
    async def instance_action(request: Request, instance_id: str, action: str) -> Response:
        form = await _form(request)
        if not session.csrf_ok(request, form.get(session.CSRF_FIELD)):
            return render(
                request,
                http,
                "error.html",
                status_code=403,
                error="the form has expired or came from another site: reload the page and try again",
            )
        client = await _context(request).client()
        try:
            target = await _act(client, instance_id, action, form)
        except HANDLED_ERRORS as exc:
            status = error_status(exc) or 500
            try:
                return await _instance(request, instance_id, error=str(exc), status_code=status)
            except HANDLED_ERRORS:
                return render(request, http, "error.html", status_code=status, error=str(exc))
        return RedirectResponse(target, status_code=303)

    router = APIRouter()
    router.include_router(public)
    router.include_router(pages)
    return router


def _instance_url(instance_id: str, done: str) -> str:
    return f"{PREFIX}/instances/{quote(instance_id, safe='')}?{urlencode({'done': done})}"


async def _act(client: AsyncDurableClient, instance_id: str, action: str, form: dict[str, str]) -> str:
    """Run one action through the client; the URL to show next.

    Raises:
        ValueError: an unknown action or unusable input; or the client's errors.
    """
    reason = form.get("reason", "").strip() or None
    if action == "raise-event":
        name = form.get("name", "").strip()
        if not name:
            raise ValueError("the event needs a name")
        data = _json_field(form.get("data", ""), "the event data")
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
        return _instance_url(new_id, "restart")
    elif action == "purge":
        result = await client.purge_orchestration(instance_id)
        if result.deleted_instance_count == 0:
            raise ValueError(f"nothing was purged: no instance {instance_id!r}")
        return f"{PREFIX}/?done=purge"
    else:
        raise ValueError(f"unknown action {action!r}")
    return _instance_url(instance_id, action)


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
