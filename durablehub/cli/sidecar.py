"""``durablehub sidecar``: the Durable Task gRPC sidecar for Microsoft's Durable Task SDKs."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from durablehub.errors import ConfigurationError
from durablehub.telemetry.logs import announce, configure_logging

if TYPE_CHECKING:
    from durablehub.sidecar.auth import TlsFiles

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
    task_hubs: Annotated[
        str | None,
        typer.Option(
            "--task-hubs",
            help="Further hubs of the account served to calls whose 'taskhub' metadata names them "
            "(comma-separated); any other name is refused.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="A file holding the bearer token every call must send (instead of "
            "DURABLEHUB_SIDECAR_TOKEN).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve TLS with this PEM certificate chain.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The PEM private key of --tls-cert.")
    ] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-ca", help="Mutual TLS: only clients with a certificate signed by this PEM CA."
        ),
    ] = None,
) -> None:
    """Serve TaskHubSidecarService (gRPC) for Microsoft's Durable Task SDKs on the task hub.

    SDK workers (durabletask-python's TaskHubGrpcWorker, and the .NET, Java and JavaScript
    ones) connect to host:port and run the orchestrators and activities; SDK clients start and
    manage instances. This process is a durablehub worker for the hub: it owns partitions,
    commits history and balances with other workers and sidecars. Served: the worker RPCs
    (orchestrator, activity and entity work items), starting, waiting for, raising events to,
    terminating, suspending, resuming, restarting, rewinding, purging and querying instances,
    history export, and the entity RPCs; hub creation/deletion answer UNIMPLEMENTED. Only the
    hub (and --task-hubs) is served. Partitions are taken while an SDK worker is connected.

    Beyond loopback it needs callers authenticated: a bearer token (DURABLEHUB_SIDECAR_TOKEN
    or --token-file) that every call must send as 'authorization: Bearer <token>' metadata, or
    mutual TLS (--tls-cert/--tls-key with --tls-client-ca); TLS without a client CA only
    encrypts, so it needs the token too. It refuses to start otherwise. Ctrl-C or SIGTERM
    stops it gracefully.
    """
    try:
        from durablehub.sidecar import Sidecar
    except ImportError as exc:
        raise fail(f"{exc}") from None

    configure_logging(log_level)
    with storage_errors():  # a ConfigurationError is one line and exit code 1
        token = _token(token_file)
        tls = _tls(tls_cert, tls_key, tls_client_ca)
    extra_hubs = [name.strip() for name in (task_hubs or "").split(",") if name.strip()]
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
        async with Sidecar(
            settings, host=host, port=port, task_hubs=extra_hubs, token=token, tls=tls
        ) as running:
            hubs = ", ".join(repr(name) for name in running.task_hubs)
            announce(
                f"sidecar {running.worker_id} serving task hub {hubs} on {host}:{running.port} "
                f"({running.security}); partitions are taken once an SDK worker connects; "
                "Ctrl-C stops it"
            )
            await stop.wait()
            announce("stopping: releasing partitions (again to force) ...")

    stop = asyncio.Event()
    with storage_errors():
        asyncio.run(run())
    announce("stopped.")


def _token(path: Path | None) -> str | None:
    """The bearer token: from --token-file or DURABLEHUB_SIDECAR_TOKEN (not both), or None."""
    from durablehub.sidecar.auth import TOKEN_ENV, read_token

    from_env = os.environ.get(TOKEN_ENV)
    if path is None:
        return read_token(from_env, source=TOKEN_ENV)
    if from_env:
        raise ConfigurationError(f"both {TOKEN_ENV} and --token-file are set: use one")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read --token-file {path}: {exc.strerror or exc}") from None
    token = read_token(text, source=f"--token-file {path}")
    if token is None:
        raise ConfigurationError(f"--token-file {path} is empty")
    return token


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    from durablehub.sidecar.auth import TlsFiles

    if cert is None and key is None:
        if client_ca is not None:
            raise ConfigurationError("--tls-client-ca needs --tls-cert and --tls-key (the server's own)")
        return None
    if cert is None or key is None:
        raise ConfigurationError("TLS needs both --tls-cert and --tls-key")
    return TlsFiles(cert, key, client_ca)
