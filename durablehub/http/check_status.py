"""The async HTTP API pattern for any ASGI app built on Starlette (FastAPI included).

``create_check_status_response`` answers a start request with 202, ``Location`` and
``Retry-After`` and the nine management URLs; the caller polls ``statusQueryGetUri`` until it
gets 200. ``wait_for_completion_or_create_check_status_response`` first waits a little, so
short orchestrations answer at once with their output.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from durablehub.async_client import AsyncDurableClient
from durablehub.errors import OrchestrationNotFoundError
from durablehub.http.payloads import CHECK_STATUS_RETRY_AFTER, management_urls, status_payload
from durablehub.http.settings import HttpSettings
from durablehub.models import OrchestrationStatus

__all__ = ["create_check_status_response", "wait_for_completion_or_create_check_status_response"]


def _base_url(request: Request, http_settings: HttpSettings | None) -> str:
    if http_settings is not None and http_settings.base_url:
        return http_settings.base_url
    # Includes the root path of an app mounted under a prefix, where its routes are.
    return str(request.base_url).rstrip("/")


def check_status_body(
    request: Request,
    instance_id: str,
    *,
    task_hub: str | None = None,
    http_settings: HttpSettings | None = None,
) -> dict[str, str]:
    """The nine keys of the check-status body (``id`` and the eight management URLs)."""
    return management_urls(
        _base_url(request, http_settings),
        instance_id,
        task_hub=task_hub,
        key=http_settings.url_key if http_settings is not None else None,
    )


def create_check_status_response(
    request: Request,
    instance_id: str,
    *,
    task_hub: str | None = None,
    http_settings: HttpSettings | None = None,
) -> JSONResponse:
    """202 Accepted, ``Location: statusQueryGetUri``, ``Retry-After: 10`` and the check-status body.

    The URLs point at this server's ``/runtime/webhooks/durabletask/`` routes (mount
    ``durablehub.http.create_app()`` or run ``durablehub serve``), or at
    ``http_settings.base_url``. With key authentication they carry the key as ``code=``, as
    Functions' URLs carry its system key, so that a client can poll them as they are.
    """
    body = check_status_body(request, instance_id, task_hub=task_hub, http_settings=http_settings)
    return JSONResponse(
        body,
        status_code=202,
        headers={"Location": body["statusQueryGetUri"], "Retry-After": str(CHECK_STATUS_RETRY_AFTER)},
    )


async def wait_for_completion_or_create_check_status_response(
    request: Request,
    instance_id: str,
    *,
    client: AsyncDurableClient,
    timeout: float | timedelta = 10.0,
    http_settings: HttpSettings | None = None,
) -> Response:
    """Wait up to ``timeout`` for the instance to finish; else the 202 check-status response.

    As Durable Functions' Python client: 200 with the output when Completed, 200 with the
    status payload when Terminated or Canceled, 500 with the status payload when Failed.

    Raises:
        OrchestrationNotFoundError: no such instance.
    """
    if await client.get_orchestration_state(instance_id, fetch_payloads=False) is None:
        raise OrchestrationNotFoundError(instance_id)
    try:
        state = await client.wait_for_orchestration_completion(instance_id, timeout=timeout)
    except TimeoutError:
        return create_check_status_response(
            request, instance_id, task_hub=client.settings.task_hub, http_settings=http_settings
        )
    if state.runtime_status is OrchestrationStatus.COMPLETED:
        output: Any = status_payload(state)["output"]
        return JSONResponse(output, status_code=200)
    code = 500 if state.runtime_status is OrchestrationStatus.FAILED else 200
    return JSONResponse(status_payload(state), status_code=code)
