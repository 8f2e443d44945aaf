"""The Durable Functions management routes under ``/runtime/webhooks/durabletask/``.

Each handler checks its parameters, makes one or two client calls and shapes the answer; the
status codes follow python-sdks.md §5, client errors become codes in ``http.errors``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.metadata import EntityQuery
from durablehub.errors import OrchestrationNotFoundError
from durablehub.http.check_status import (
    create_check_status_response,
    status_location,
    wait_for_completion_or_create_check_status_response,
)
from durablehub.http.context import ManagementContext
from durablehub.http.errors import error_response
from durablehub.http.payloads import (
    API_PREFIX,
    RUNNING_STATUSES,
    STATUS_RETRY_AFTER,
    entity_payload,
    entity_state,
    status_payload,
)
from durablehub.models import OrchestrationStatus
from durablehub.state import OrchestrationQuery
from durablehub.telemetry import tracing

CONTINUATION_HEADER = "x-ms-continuation-token"
MAX_PAGE_SIZE = 1000
_JSON_BODY = {"content": {"application/json": {"schema": {}}}, "required": False}

router = APIRouter(prefix=API_PREFIX)


def _codes(**codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: ``_codes(r404="unknown instance")``."""
    return {int(k[1:]): {"description": text} for k, text in codes.items()}


_CHECK_STATUS = "Accepted: the check-status body (id and the management URLs), Location, Retry-After"

ReasonQuery = Annotated[str | None, Query(description="Why; recorded in the instance's history")]
CreatedFrom = Annotated[datetime | None, Query(alias="createdTimeFrom", description="ISO 8601, inclusive")]
CreatedTo = Annotated[datetime | None, Query(alias="createdTimeTo", description="ISO 8601, inclusive")]
StatusFilter = Annotated[
    str | None, Query(alias="runtimeStatus", description="Comma-separated: Running,Completed,...")
]


def _context(request: Request) -> ManagementContext:
    return request.app.state.durablehub


async def _json_body(request: Request, what: str) -> Any:
    """The request body as JSON, as the Functions host reads it: an empty body is no input
    (None), whatever its content type (1.x's client posts empty bodies as
    application/octet-stream). A JSON body under another content type is read only from a
    request that carried the key or a token (the routes' authentication has checked it by
    now); without authentication it must be labelled JSON. 400 for a body that is not JSON."""
    body = await request.body()
    if not body.strip():
        return None
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    labelled_json = media_type == "application/json" or media_type.endswith("+json")
    if not labelled_json and _context(request).http.auth == "none":
        raise ValueError(
            f"{what} must be JSON sent as application/json (or no body), got content type {media_type!r}"
        )
    try:
        return json.loads(body)
    except ValueError:
        raise ValueError(
            f"{what} must be JSON: the body (sent as {media_type!r}) is not valid JSON"
        ) from None


async def _ignored_body(request: Request) -> None:
    """Routes that take no input ignore an empty or JSON body, and refuse any other (a form
    posted to them was not meant for this API)."""
    await _json_body(request, "the request body")


def _statuses(text: str | None) -> list[OrchestrationStatus] | None:
    if not text:
        return None
    by_name = {s.table_name.lower(): s for s in OrchestrationStatus}
    by_name |= {s.name.lower(): s for s in OrchestrationStatus}
    statuses = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name.lower() not in by_name:
            raise ValueError(
                f"unknown runtimeStatus {name!r}; use {', '.join(s.table_name for s in OrchestrationStatus)}"
            )
        statuses.append(by_name[name.lower()])
    return statuses or None


def _check_task_hub(context: ManagementContext, task_hub: str | None) -> None:
    if task_hub and task_hub.lower() != context.settings.task_hub.lower():
        raise ValueError(f"this server serves task hub {context.settings.task_hub!r}, not {task_hub!r}")


TaskHubQuery = Annotated[
    str | None, Query(alias="taskHub", description="Must name the hub this server serves")
]
WaitQuery = Annotated[
    float | None, Query(ge=0, le=600, description="Seconds to wait for completion before answering 202")
]
VersionQuery = Annotated[
    str | None, Query(description="The orchestration version (default: the server's default_version)")
]


@router.post(
    "/orchestrators/{function_name}",
    status_code=202,
    summary="Start an orchestration",
    responses=_codes(
        r202=_CHECK_STATUS,
        r200="Completed in time (timeout)",
        r409="The id is taken",
        r500="Failed (timeout)",
    ),
    openapi_extra={"requestBody": _JSON_BODY},
)
async def start_orchestration(
    request: Request,
    function_name: str,
    timeout: WaitQuery = None,
    version: VersionQuery = None,
    task_hub: TaskHubQuery = None,
) -> Response:
    """The body is the input (an empty body, whatever its content type: no input). 202 with the
    check-status body; with ``timeout``, the result if it finishes in time (200, or 500 when
    it failed). 409 if the id is taken by a live instance."""
    return await _start(request, function_name, None, timeout, version, task_hub)


@router.post(
    "/orchestrators/{function_name}/{instance_id}",
    status_code=202,
    summary="Start an orchestration with a given instance id",
    responses=_codes(
        r202=_CHECK_STATUS,
        r200="Completed in time (timeout)",
        r409="The id is taken",
        r500="Failed (timeout)",
    ),
    openapi_extra={"requestBody": _JSON_BODY},
)
async def start_orchestration_with_id(
    request: Request,
    function_name: str,
    instance_id: str,
    timeout: WaitQuery = None,
    version: VersionQuery = None,
    task_hub: TaskHubQuery = None,
) -> Response:
    """As ``POST orchestrators/{function_name}``, with the instance id chosen by the caller."""
    return await _start(request, function_name, instance_id, timeout, version, task_hub)


async def _start(
    request: Request,
    name: str,
    instance_id: str | None,
    timeout: float | None,
    version: str | None,
    task_hub: str | None,
) -> Response:
    context = _context(request)
    _check_task_hub(context, task_hub)
    context.check_orchestrator(name)
    data = await _json_body(request, "the orchestration input")
    client = await context.client()
    with tracing.continuing(request.headers):  # an incoming traceparent is the parent
        iid = await client.schedule_new_orchestration(
            name, input=data, instance_id=instance_id, version=version or None
        )
    if timeout:
        return await wait_for_completion_or_create_check_status_response(
            request, iid, client=client, timeout=timeout, http_settings=context.http
        )
    return create_check_status_response(
        request, iid, task_hub=context.settings.task_hub, http_settings=context.http
    )


@router.get(
    "/instances/{instance_id}",
    summary="Status of an instance",
    responses=_codes(r202="Still running: Location and Retry-After", r404="Unknown instance", r500="Failed"),
)
async def get_instance(
    request: Request,
    instance_id: str,
    show_history: Annotated[bool, Query(alias="showHistory")] = False,
    show_history_output: Annotated[bool, Query(alias="showHistoryOutput")] = False,
    show_input: Annotated[bool, Query(alias="showInput")] = True,
    error_on_failure: Annotated[bool, Query(alias="returnInternalServerErrorOnFailure")] = False,
    task_hub: TaskHubQuery = None,
) -> Response:
    """202 (with ``Location`` and ``Retry-After``) while Pending, Running, ContinuedAsNew or
    Suspended; 200 once finished (500 for Failed with ``returnInternalServerErrorOnFailure``)."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    client = await context.client()
    state = await client.get_orchestration_state(instance_id, fetch_payloads=True)
    if state is None:
        raise OrchestrationNotFoundError(instance_id)
    history = await client.get_orchestration_history(instance_id) if show_history else None
    body = status_payload(
        state, show_input=show_input, history=history, show_history_output=show_history_output
    )
    if state.runtime_status in RUNNING_STATUSES:
        location = status_location(request, instance_id, context.http)
        headers = {"Location": location, "Retry-After": str(STATUS_RETRY_AFTER)}
        return JSONResponse(body, status_code=202, headers=headers)
    failed = state.runtime_status is OrchestrationStatus.FAILED
    return JSONResponse(body, status_code=500 if failed and error_on_failure else 200)


@router.get("/instances", summary="List instances")
@router.get("/instances/", include_in_schema=False)
async def list_instances(
    request: Request,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    runtime_status: StatusFilter = None,
    prefix: Annotated[str | None, Query(alias="instanceIdPrefix")] = None,
    name: Annotated[str | None, Query(description="Orchestrator name (durablehub's addition)")] = None,
    versions: Annotated[
        list[str] | None,
        Query(alias="version", description="Orchestration version, repeatable; empty: unversioned"),
    ] = None,
    top: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 100,
    show_input: Annotated[bool, Query(alias="showInput")] = False,
    continuation: Annotated[str | None, Header(alias=CONTINUATION_HEADER)] = None,
    task_hub: TaskHubQuery = None,
) -> Response:
    """One page of instances; the next page is asked for with the returned continuation header."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    query = OrchestrationQuery(
        created_time_from=created_from,
        created_time_to=created_to,
        runtime_status=_statuses(runtime_status),
        instance_id_prefix=prefix or None,
        page_size=top,
        fetch_inputs_and_outputs=show_input,
        continuation_token=continuation or None,
        name=name or None,
        versions=versions,
    )
    page = await (await context.client()).query_orchestrations(query)
    headers = {CONTINUATION_HEADER: page.continuation_token} if page.continuation_token else None
    return JSONResponse([status_payload(s, show_input=show_input) for s in page.items], headers=headers)


@router.delete(
    "/instances/{instance_id}",
    summary="Purge an instance's history",
    responses=_codes(r404="Unknown instance", r409="The instance has not finished"),
)
async def purge_instance(request: Request, instance_id: str, task_hub: TaskHubQuery = None) -> Response:
    """200 with ``instancesDeleted``; 404 if there is no such instance; 409 while it runs."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    result = await (await context.client()).purge_orchestration(instance_id)
    if result.deleted_instance_count == 0:
        raise OrchestrationNotFoundError(instance_id)
    return JSONResponse({"instancesDeleted": result.deleted_instance_count})


@router.delete(
    "/instances",
    summary="Purge the history of the instances that match a filter",
    responses=_codes(r404="No instance matched"),
)
@router.delete("/instances/", include_in_schema=False)
async def purge_instances(
    request: Request,
    created_from: Annotated[datetime, Query(alias="createdTimeFrom", description="ISO 8601, required")],
    created_to: CreatedTo = None,
    runtime_status: StatusFilter = None,
    task_hub: TaskHubQuery = None,
) -> Response:
    """200 with ``instancesDeleted``; 404 if nothing matched. Only finished instances are purged."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    result = await (await context.client()).purge_orchestrations_by(
        created_time_from=created_from, created_time_to=created_to, runtime_status=_statuses(runtime_status)
    )
    if result.deleted_instance_count == 0:
        return JSONResponse({"error": "no instance matched the filter", "instancesDeleted": 0}, 404)
    return JSONResponse({"instancesDeleted": result.deleted_instance_count})


@router.post(
    "/instances/{instance_id}/raiseEvent/{event_name}",
    status_code=202,
    summary="Send an event to an instance",
    responses=_codes(r404="Unknown instance", r410="The instance has finished"),
    openapi_extra={"requestBody": _JSON_BODY},
)
async def raise_event(
    request: Request, instance_id: str, event_name: str, task_hub: TaskHubQuery = None
) -> Response:
    """202; 404 unknown instance; 410 finished; 400 when the body is not JSON."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    data = await _json_body(request, "the event data")
    with tracing.continuing(request.headers):
        await (await context.client()).raise_orchestration_event(instance_id, event_name, data=data)
    return Response(status_code=202)


@router.post(
    "/instances/{instance_id}/terminate",
    status_code=202,
    summary="Terminate an instance",
    responses=_codes(r404="Unknown instance", r410="Already finished"),
)
async def terminate(
    request: Request, instance_id: str, reason: ReasonQuery = None, task_hub: TaskHubQuery = None
) -> Response:
    """202; 404; 410 if it has already finished."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    await _ignored_body(request)
    await (await context.client()).terminate_orchestration(instance_id, output=reason)
    return Response(status_code=202)


@router.post(
    "/instances/{instance_id}/suspend",
    status_code=202,
    summary="Suspend an instance",
    responses=_codes(r404="Unknown instance", r410="Already finished"),
)
async def suspend(
    request: Request, instance_id: str, reason: ReasonQuery = None, task_hub: TaskHubQuery = None
) -> Response:
    """202; 404; 410 if it has finished."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    await _ignored_body(request)
    await (await context.client()).suspend_orchestration(instance_id, reason=reason)
    return Response(status_code=202)


@router.post(
    "/instances/{instance_id}/resume",
    status_code=202,
    summary="Resume a suspended instance",
    responses=_codes(r404="Unknown instance", r410="Already finished"),
)
async def resume(
    request: Request, instance_id: str, reason: ReasonQuery = None, task_hub: TaskHubQuery = None
) -> Response:
    """202; 404; 410 if it has finished."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    await _ignored_body(request)
    await (await context.client()).resume_orchestration(instance_id, reason=reason)
    return Response(status_code=202)


@router.post(
    "/instances/{instance_id}/rewind",
    status_code=202,
    summary="Rewind a failed instance",
    responses=_codes(r404="Unknown instance", r409="Not failed", r410="Completed, Terminated or Canceled"),
)
async def rewind(
    request: Request, instance_id: str, reason: ReasonQuery = None, task_hub: TaskHubQuery = None
) -> Response:
    """202; 404; 410 if Completed, Terminated or Canceled; 409 if it has not failed yet."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    await _ignored_body(request)
    await (await context.client()).rewind_orchestration(instance_id, reason=reason)
    return Response(status_code=202)


@router.post(
    "/instances/{instance_id}/restart",
    status_code=202,
    summary="Restart an instance",
    responses=_codes(r202=_CHECK_STATUS, r404="Unknown instance"),
)
async def restart(
    request: Request,
    instance_id: str,
    new_id: Annotated[bool, Query(alias="restartWithNewInstanceId")] = False,
    task_hub: TaskHubQuery = None,
) -> Response:
    """Starts the instance again with its original input: 202 with the check-status body of the
    restarted (or, with ``restartWithNewInstanceId=true``, the new) instance; 404 unknown."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    await _ignored_body(request)
    client = await context.client()
    iid = await client.restart_orchestration(instance_id, restart_with_new_instance_id=new_id)
    return create_check_status_response(
        request, iid, task_hub=context.settings.task_hub, http_settings=context.http
    )


# ---------------------------------------------------------------------------------- entities

OperationQuery = Annotated[str | None, Query(alias="op", description="The operation to signal (required)")]


@router.get(
    "/entities/{name}/{key}",
    summary="An entity's state",
    responses=_codes(r200="The entity's state (JSON)", r404="No such entity (or it has no state)"),
)
async def get_entity(request: Request, name: str, key: str, task_hub: TaskHubQuery = None) -> Response:
    """200 with the state as the body; 404 if the entity does not exist (it has no state)."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    entity = EntityInstanceId(name, key)
    metadata = await (await context.client()).get_entity(entity, include_state=True)
    if metadata is None:
        return error_response(404, f"no entity {str(entity)!r} (it does not exist or has no state)")
    return JSONResponse(entity_state(metadata.serialized_state))


@router.get(
    "/entities/{name}",
    summary="List the entities of a name",
    responses=_codes(r200="A page of entities; the next page with the x-ms-continuation-token header"),
)
async def list_entities(
    request: Request,
    name: str,
    top: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 100,
    fetch_state: Annotated[bool, Query(alias="fetchState", description="Include each state")] = False,
    modified_from: Annotated[
        datetime | None, Query(alias="lastOperationTimeFrom", description="ISO 8601, inclusive")
    ] = None,
    modified_to: Annotated[
        datetime | None, Query(alias="lastOperationTimeTo", description="ISO 8601, inclusive")
    ] = None,
    continuation: Annotated[str | None, Header(alias=CONTINUATION_HEADER)] = None,
    task_hub: TaskHubQuery = None,
) -> Response:
    """One page of the entities named ``name`` that have state. A page may hold fewer than
    ``top`` entities (even none) and still carry a continuation header: follow it to the end."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    entity_name = EntityInstanceId(name, "").name  # checks the name
    query = EntityQuery(
        instance_id_starts_with=f"@{entity_name}@",
        last_modified_from=modified_from,
        last_modified_to=modified_to,
        include_state=fetch_state,
        page_size=top,
        continuation_token=continuation or None,
    )
    page = await (await context.client()).query_entities(query)
    headers = {CONTINUATION_HEADER: page.continuation_token} if page.continuation_token else None
    return JSONResponse([entity_payload(m, show_state=fetch_state) for m in page.items], headers=headers)


_SIGNAL = {
    "status_code": 202,
    "summary": "Signal an entity",
    "responses": _codes(r202="Accepted: the signal is queued"),
    "openapi_extra": {"requestBody": _JSON_BODY},
}


@router.post("/entities/{name}/{key}", **_SIGNAL)  # type: ignore[arg-type]
@router.delete("/entities/{name}/{key}", **_SIGNAL)  # type: ignore[arg-type]
async def signal_entity(
    request: Request, name: str, key: str, op: OperationQuery = None, task_hub: TaskHubQuery = None
) -> Response:
    """Sends the operation ``op`` with the body (JSON) as its input: 202; 400 without ``op``,
    or when the body is not JSON. The entity is created by its first operation."""
    context = _context(request)
    _check_task_hub(context, task_hub)
    entity = EntityInstanceId(name, key)
    if not op:
        raise ValueError("the operation is missing: give it as the 'op' query parameter")
    data = await _json_body(request, "the operation input")
    client = await context.client()
    with tracing.continuing(request.headers):  # an incoming traceparent is the parent
        await client.signal_entity(entity, op, data)
    return Response(status_code=202)
