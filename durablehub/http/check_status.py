"""The async HTTP API pattern for any ASGI app built on Starlette (FastAPI included).

``create_check_status_response`` answers a start request with 202, ``Location`` and
``Retry-After`` and the nine management URLs; the caller polls ``statusQueryGetUri`` until it
gets 200. ``wait_for_completion_or_create_check_status_response`` first waits a little, so
short orchestrations answer at once with their output.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from durablehub.async_client import AsyncDurableClient
from durablehub.errors import ConfigurationError, OrchestrationNotFoundError
from durablehub.http.hosts import ALLOWED_HOSTS_SETTING, BASE_URL_SETTING, LOOPBACK_NAMES, untrusted_host
from durablehub.http.payloads import (
    API_PREFIX,
    CHECK_STATUS_RETRY_AFTER,
    KEY_QUERY_PARAMETER,
    management_urls,
    status_payload,
)
from durablehub.http.settings import HttpSettings
from durablehub.models import OrchestrationStatus

__all__ = ["create_check_status_response", "wait_for_completion_or_create_check_status_response"]


def public_base_url(request: Request, http_settings: HttpSettings | None) -> str:
    """``base_url`` if configured, else the request's own base URL if its Host is trusted.

    Raises:
        ConfigurationError: neither (a URL on a Host the caller chose would send the next
            client, and its credentials, wherever that caller wanted).
    """
    if http_settings is not None and http_settings.base_url:
        return http_settings.base_url
    trusted = http_settings.trusted_hosts if http_settings is not None else list(LOOPBACK_NAMES)
    name = untrusted_host(request.headers.raw, trusted)
    if name is not None:
        raise ConfigurationError(
            f"management URLs cannot be built for the host {name!r}: set {BASE_URL_SETTING} (the "
            f"server's public URL) or add the host to {ALLOWED_HOSTS_SETTING}"
        )
    # Includes the root path of an app mounted under a prefix, where its routes are.
    return str(request.base_url).rstrip("/")


def status_location(request: Request, instance_id: str, http_settings: HttpSettings | None) -> str:
    """The URL of ``GET instances/{id}`` as requested (its query kept), on the public base URL,
    without the ``code`` key unless keys in URLs are turned on."""
    keep_key = http_settings is not None and http_settings.key_in_urls
    query = [(k, v) for k, v in request.query_params.multi_items() if keep_key or k != KEY_QUERY_PARAMETER]
    url = f"{public_base_url(request, http_settings)}{API_PREFIX}/instances/{quote(instance_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


def check_status_body(
    request: Request,
    instance_id: str,
    *,
    task_hub: str | None = None,
    http_settings: HttpSettings | None = None,
) -> dict[str, str]:
    """The nine keys of the check-status body (``id`` and the eight management URLs)."""
    return management_urls(
        public_base_url(request, http_settings),
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
    ``http_settings.base_url``. They carry no key unless ``http_settings.key_in_urls`` (then
    ``code=``, as Functions' URLs carry its system key): whoever receives them still needs the
    API's credentials to use them.

    Raises:
        ConfigurationError: no ``base_url`` and the request's Host is not a trusted one.
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
