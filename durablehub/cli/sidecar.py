"""``durablehub sidecar``: the Durable Task gRPC sidecar for Microsoft's Durable Task SDKs."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from durablehub.cli.common import (
    ConnectionOption,
    MetricsHostOption,
    MetricsPortOption,
    PartitionsOption,
    TaskHubOption,
    exit_now,
    fail,
    load_settings,
    start_metrics,
    storage_errors,
    typer_app,
)
from durablehub.telemetry.logs import announce, configure_logging

app = typer_app()


@app.command()
def sidecar(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (loopback unless told otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (4001, the Durable Task SDKs' default).")] = 4001,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Serve TaskHubSidecarService (gRPC) for Microsoft's Durable Task SDKs on the task hub.

    SDK workers (durabletask-python's TaskHubGrpcWorker, and the .NET, Java and JavaScript
    ones) connect to host:port and run the orchestrators and activities; SDK clients start and
    manage instances. This process is a durablehub worker for the hub: it owns partitions,
    commits history and balances with other workers and sidecars. Served: the worker RPCs
    (orchestrator, activity and entity work items), starting, waiting for, raising events to,
    terminating, suspending, resuming, restarting, rewinding, purging and querying instances,
    history export, and the entity RPCs; hub creation/deletion answer UNIMPLEMENTED. The
    'taskhub' call metadata selects another hub of the account. Ctrl-C or SIGTERM stops it
    gracefully.
    """
    try:
        from durablehub.sidecar import Sidecar
    except ImportError as exc:
        raise fail(f"{exc}") from None

    configure_logging(log_level)
    settings = load_settings(task_hub, connection_string, partitions).model_copy(update={"retry_total": 3})
    start_metrics(metrics_port, metrics_host, settings)

    def on_signal(signum: int) -> None:
        if stop.is_set():  # the second one: the user does not want to wait
            typer.echo(f"{signal.Signals(signum).name} again: exiting now, without finishing", err=True)
            exit_now(128 + signum)
        stop.set()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        async with Sidecar(settings, host=host, port=port) as running:
            announce(
                f"sidecar {running.worker_id} serving task hub {settings.task_hub!r} on "
                f"{host}:{running.port}; Ctrl-C stops it"
            )
            await stop.wait()
            announce("stopping: releasing partitions (again to force) ...")

    stop = asyncio.Event()
    with storage_errors():
        asyncio.run(run())
    announce("stopped.")
