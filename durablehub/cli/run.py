"""Long-running commands: ``durablehub azurite`` and ``durablehub worker``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from durablehub.cli.common import (
    ConnectionOption,
    MetricsHostOption,
    MetricsPortOption,
    PartitionsOption,
    TaskHubOption,
    exit_now,
    fail,
    import_app,
    load_settings,
    start_metrics,
    storage_errors,
    typer_app,
)
from durablehub.cli.supervisor import PROCESS_ENV, WorkerSupervisor
from durablehub.telemetry.logs import announce, configure_logging

app = typer_app()


@app.command()
def azurite(
    location: Annotated[Path, typer.Option(help="Data folder (persistent across restarts).")] = Path(
        ".azurite"
    ),
    in_memory: Annotated[
        bool, typer.Option("--in-memory", help="Keep data in memory (stalls under queue load).")
    ] = False,
    blob_port: Annotated[int, typer.Option(help="Blob port (0 = any free port).")] = 10000,
    queue_port: Annotated[int, typer.Option(help="Queue port.")] = 10001,
    table_port: Annotated[int, typer.Option(help="Table port.")] = 10002,
) -> None:
    """Run the pinned Azurite on 127.0.0.1 until Ctrl-C, and print its connection string."""
    from durablehub.azurite import AzuriteProcess

    process = AzuriteProcess(
        location=None if in_memory else location,
        in_memory=in_memory,
        blob_port=blob_port,
        queue_port=queue_port,
        table_port=table_port,
    )
    with storage_errors():
        try:
            process.start()
        except (RuntimeError, TimeoutError) as exc:
            raise fail(str(exc)) from None
    typer.echo(f"Azurite is running (data: {'memory' if in_memory else location}). Connection string:\n")
    typer.echo(f"export AzureWebJobsStorage='{process.connection_string}'\n")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C too, explicitly: a process started in the background by a shell inherits SIGINT
    # ignored, and Python then leaves it ignored (KeyboardInterrupt would never come).
    signal.signal(signal.SIGINT, stop)
    try:
        # Inside the try: a Ctrl-C right after the prompt must stop Azurite cleanly too.
        typer.echo("Press Ctrl-C to stop.")
        code = process.wait()
        raise fail(f"Azurite exited with code {code}:\n{process.log_tail()}")
    except KeyboardInterrupt:
        typer.echo("\nstopping Azurite ...")
    finally:
        process.stop()
    typer.echo("stopped.")


@app.command()
def worker(
    target: Annotated[str, typer.Argument(help="The app to run, as module:attribute (e.g. myapp:app).")],
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
    processes: Annotated[
        str,
        typer.Option(
            "--processes",
            help="Worker processes to run under one supervisor: a number, or 'auto' (one per core). "
            "They share the partitions through the leases; a crashed one is restarted.",
        ),
    ] = "1",
) -> None:
    """Run a worker for an App until Ctrl-C or SIGTERM, then stop gracefully (leases released)."""
    import asyncio

    from durablehub.worker import Worker

    count = _process_count(processes)
    if count > 1:
        if metrics_port is not None:
            raise fail("--metrics-port needs --processes 1: run one worker per port")
        configure_logging(log_level)
        settings = load_settings(task_hub, connection_string, partitions)  # fail here, not N times
        exit_now(_supervise(target, settings, log_level, count))
    tag = f"[p{os.environ[PROCESS_ENV]}] " if PROCESS_ENV in os.environ else ""
    configure_logging(log_level, tag=tag)
    user_app = import_app(target)
    settings = load_settings(task_hub, connection_string, partitions)
    settings = settings.model_copy(update={"retry_total": 3})
    start_metrics(metrics_port, metrics_host, settings)

    supervisor = os.getppid() if PROCESS_ENV in os.environ else None

    def on_signal(signum: int) -> None:
        if stop.is_set():  # the second one: the user does not want to wait
            if supervisor is not None and os.getppid() == supervisor:
                # A signal to the whole process group (coreutils timeout, systemd's KillMode,
                # Ctrl-C) reaches this child and then comes again from the supervisor: one stop.
                # Forcing is the supervisor's job (a second signal to it kills its children).
                return
            typer.echo(f"{signal.Signals(signum).name} again: exiting now, without finishing", err=True)
            exit_now(128 + signum)
        stop.set()

    async def run() -> Worker:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        async with Worker(user_app, settings) as running:
            announce(f"worker {running.worker_id} running on task hub {settings.task_hub!r}; Ctrl-C stops it")
            await stop.wait()
            force = "" if supervisor is not None else " (again to force)"  # else: the supervisor forces
            announce(f"stopping: finishing in-flight work and releasing partitions{force} ...")
        return running

    stop = asyncio.Event()
    with storage_errors():
        stopped = asyncio.run(run())
    announce("stopped.")
    if stopped.activities_unfinished:  # their threads would keep the interpreter from exiting
        exit_now(0)


def _process_count(value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise fail(f"--processes must be a number from 1 to 64 or 'auto', got {value!r}")
    return int(value)


def _supervise(target: str, settings: Any, log_level: str, count: int) -> int:
    """Run ``count`` single-process workers of ``target`` under a supervisor. The settings go to
    the children in their environment, not on a command line any user can read."""
    env = {
        **os.environ,
        "DURABLEHUB_TASK_HUB": settings.task_hub,
        "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
    }
    if settings.connection_string is not None:
        env["AzureWebJobsStorage"] = settings.connection_string.get_secret_value()
    command = [
        sys.executable,
        "-m",
        "durablehub",
        "worker",
        target,
        "--log-level",
        log_level,
        "--processes",
        "1",
    ]
    announce(f"supervisor: running {count} worker processes of {target} on task hub {settings.task_hub!r}")
    return WorkerSupervisor(command, env, count).run()
