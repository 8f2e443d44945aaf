"""``durablehub serve``: the HTTP management API with uvicorn, optionally with a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from durablehub.cli.common import (
    ConnectionOption,
    MetricsHostOption,
    MetricsPortOption,
    PartitionsOption,
    TaskHubOption,
    fail,
    import_app,
    load_settings,
    start_metrics,
    storage_errors,
)
from durablehub.errors import ConfigurationError
from durablehub.http.hosts import ALLOWED_HOSTS_SETTING, BASE_URL_SETTING, is_loopback
from durablehub.telemetry.logs import announce, configure_logging, json_logs

if TYPE_CHECKING:
    from durablehub.http.settings import HttpSettings

app = typer.Typer()


def check_exposure(host: str, http_settings: HttpSettings) -> None:
    """Refuse to listen beyond loopback with the defaults that only make sense on loopback.

    Raises:
        ConfigurationError: what to set instead.
    """
    if is_loopback(host):
        return
    if http_settings.auth == "none":
        raise ConfigurationError(
            f"authentication is off (DURABLEHUB_HTTP_AUTH=none): serve on loopback only, not on {host}; "
            "set DURABLEHUB_HTTP_KEY or DURABLEHUB_HTTP_AUTH=entra to serve other machines"
        )
    if http_settings.allowed_hosts is None and http_settings.base_url is None:
        raise ConfigurationError(
            f"serving on {host} needs {ALLOWED_HOSTS_SETTING} (the host names clients use, '*' for "
            f"any) or {BASE_URL_SETTING} (the server's public URL): by default only loopback "
            "names are answered"
        )


@app.command()
def serve(
    worker_app: Annotated[
        str | None,
        typer.Option("--app", help="Also run a worker for this App (module:attribute), in this process."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (7071, as the Functions host).")] = 7071,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "info",
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Refuse every request that would change the hub; the dashboard hides its actions "
            "(or DURABLEHUB_HTTP_READ_ONLY=true).",
        ),
    ] = False,
) -> None:
    """Serve the Durable Functions HTTP API (/runtime/webhooks/durabletask/) and the web dashboard
    (/dashboard/) for the task hub.

    Authentication comes from DURABLEHUB_HTTP_* variables: by default the key
    DURABLEHUB_HTTP_KEY, sent as ?code= or the x-functions-key header. On an interface other
    than loopback, DURABLEHUB_HTTP_ALLOWED_HOSTS or DURABLEHUB_HTTP_BASE_URL names the host
    clients use.
    """
    try:
        import uvicorn

        from durablehub.http import HttpSettings, create_app
    except ImportError as exc:
        raise fail(
            f"the HTTP API needs the http extra ({exc.name} is missing): pip install 'durablehub[http]'"
        ) from None
    configure_logging(log_level)
    user_app = import_app(worker_app) if worker_app else None
    settings = load_settings(task_hub, connection_string, partitions).model_copy(update={"retry_total": 3})
    # Loopback unless told, whatever --host is: /metrics has no authentication.
    start_metrics(metrics_port, metrics_host, settings)
    with storage_errors():
        http_settings = HttpSettings(**({"read_only": True} if read_only else {}))
        check_exposure(host, http_settings)
        api = create_app(settings, http_settings, worker_app=user_app)
    where = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    announce(
        f"serving task hub {settings.task_hub!r} on {where}/runtime/webhooks/durabletask/ "
        f"(auth: {http_settings.auth}{', with a worker' if user_app else ''}"
        f"{', read-only' if http_settings.read_only else ''}); Ctrl-C stops it"
    )
    if http_settings.dashboard:
        announce(f"dashboard: {where}/dashboard/")
    with storage_errors():
        options = {"host": host, "port": port, "log_level": log_level.lower(), "access_log": True}
        if json_logs():  # uvicorn's records go through the root handler, not its own formatters
            uvicorn.run(api, **options, log_config=None)  # type: ignore[arg-type]
        else:
            uvicorn.run(api, **options)  # type: ignore[arg-type]
