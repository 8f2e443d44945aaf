"""``create_app``: the management API as an ASGI app, optionally running a worker beside it.

FastAPI rather than bare Starlette: it checks query parameters against their types and
writes the OpenAPI description (``/runtime/webhooks/durabletask/openapi.json``) from the
routes themselves, so the description cannot drift from what is served. Every route, the
description included, sits behind the authentication of ``HttpSettings``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from durablehub.app import App
from durablehub.async_client import AsyncDurableClient
from durablehub.errors import ConfigurationError
from durablehub.http.auth import authentication
from durablehub.http.context import ManagementContext
from durablehub.http.errors import install_error_handlers
from durablehub.http.guards import LoopbackOnly, ReadOnly, RequestCredentials, SameOriginWrites, TrustedHosts
from durablehub.http.limits import BodySizeLimit
from durablehub.http.logs import install_access_log_redaction
from durablehub.http.payloads import API_PREFIX
from durablehub.http.routes import router
from durablehub.http.settings import HttpSettings
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings

OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DASHBOARD = "/dashboard"
_LOG = logging.getLogger("durablehub.http")


def create_app(
    settings: TaskHubSettings | None = None,
    http_settings: HttpSettings | None = None,
    *,
    client: AsyncDurableClient | None = None,
    worker_app: App | None = None,
    worker_options: WorkerOptions | None = None,
) -> FastAPI:
    """The management API of one task hub (settings from the environment by default).

    With ``worker_app``, a ``Worker`` for it runs while the server does, so that
    ``POST orchestrators/{name}`` runs end to end in one process. ``client``, if given, is
    used instead of one opened from ``settings`` (and is not closed by the app).

    Raises:
        ConfigurationError: settings that cannot work (no storage account, no key, ...).
    """
    settings = settings or (client.settings if client is not None else TaskHubSettings())
    http_settings = http_settings or HttpSettings()
    # Here, not in the lifespan: an app that mounts this one never runs its lifespan.
    install_access_log_redaction()
    context = ManagementContext(settings, http_settings, client=client, app=worker_app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(context.close)
            if worker_app is not None:
                from durablehub.worker import Worker

                await stack.enter_async_context(Worker(worker_app, settings, options=worker_options))
            _LOG.info(
                "management API for task hub %r (auth: %s)%s",
                settings.task_hub,
                http_settings.auth,
                f", with a worker for {len(worker_app.orchestrator_names)} orchestrators"
                if worker_app
                else "",
            )
            yield

    app = FastAPI(
        title="durablehub management API",
        description=(
            "The Durable Functions HTTP API for one task hub: start instances, query, raise events, "
            "terminate, suspend, resume, rewind, restart, purge; read, list and signal entities. "
            + {
                "key": "Every request carries the key: the `code` query parameter or the "
                "`x-functions-key` header.",
                "entra": "Every request carries a Microsoft Entra ID access token (Authorization: Bearer) "
                "with one of the app roles or scopes the server requires.",
                "none": "Authentication is off on this server.",
            }[http_settings.auth]
        ),
        version="1.0",
        lifespan=lifespan,
        openapi_url=None,  # served below, behind authentication
        docs_url=None,
        redoc_url=None,
    )
    app.state.durablehub = context
    install_error_handlers(app)
    # The last added runs first: the Host is checked before anything else.
    app.add_middleware(BodySizeLimit, max_bytes=http_settings.max_body_bytes)
    if http_settings.read_only:
        app.add_middleware(ReadOnly, allowed=(f"{DASHBOARD}/login", f"{DASHBOARD}/logout"))
    # The dashboard's forms are URL-encoded; its routes check a CSRF token (dashboard.session).
    form_paths = (f"{DASHBOARD}/",) if http_settings.dashboard else ()
    app.add_middleware(
        SameOriginWrites,
        base_url=http_settings.base_url,
        form_paths=form_paths,
        credentials=request_credentials(http_settings),
    )
    if http_settings.auth == "none":
        app.add_middleware(LoopbackOnly)
    app.add_middleware(TrustedHosts, hosts=http_settings.trusted_hosts)
    auth = authentication(http_settings, attempts=context.key_attempts)
    dependencies = [Depends(auth)] if auth is not None else []
    app.include_router(router, dependencies=dependencies)
    if http_settings.dashboard:
        _install_dashboard(app, http_settings)

    @app.get(OPENAPI_PATH, include_in_schema=False, dependencies=dependencies)
    async def openapi() -> JSONResponse:
        if app.openapi_schema is None:
            app.openapi_schema = _describe(
                app,
                authenticated=auth is not None,
                authorized=http_settings.auth == "entra",
                limited=http_settings.auth == "key",
            )
        return JSONResponse(app.openapi_schema)

    return app


def request_credentials(http_settings: HttpSettings) -> RequestCredentials:
    """What lifts the content-type check of ``SameOriginWrites``: the credentials the API checks."""
    return RequestCredentials(key=http_settings.auth == "key", bearer=http_settings.auth == "entra")


def _install_dashboard(app: FastAPI, http_settings: HttpSettings) -> None:
    try:
        from durablehub.dashboard import install_dashboard
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs the http extra ({exc.name} is missing): pip install 'durablehub[http]', "
            "or set DURABLEHUB_HTTP_DASHBOARD=false"
        ) from None
    install_dashboard(app, http_settings)


def _describe(app: FastAPI, *, authenticated: bool, authorized: bool, limited: bool) -> dict[str, Any]:
    """FastAPI's description, with the codes this API answers: 400 (not 422), 401, 403, 429."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            responses.pop("422", None)
            responses["400"] = {
                "description": "Bad input: a parameter, id or body that cannot be used",
                **error,
            }
            if authenticated:
                responses["401"] = {"description": "No credentials, or wrong ones", **error}
            if authorized:
                responses["403"] = {"description": "A valid token without a required role or scope", **error}
            if limited:
                responses["429"] = {
                    "description": "Too many wrong keys from this client (Retry-After)",
                    **error,
                }
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    return schema
