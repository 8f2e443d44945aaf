"""The ``durablehub`` command: the root app, ``azurite`` and ``hub`` commands.

Errors are one readable line on stderr and a non-zero exit code, never a traceback: a
``DurableHubError`` says what is wrong, an unreachable endpoint or a refused credential is
named as such (without echoing the connection string).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from durablehub.errors import DurableHubError

app = typer.Typer(
    name="durablehub",
    help="Durable Functions in pure Python on an Azure Storage task hub.",
    no_args_is_help=True,
    add_completion=False,
)
hub_app = typer.Typer(help="Create, inspect and delete task hubs.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")

T = TypeVar("T")

TaskHubOption = Annotated[
    str | None,
    typer.Option(
        "--task-hub", "-t", envvar="DURABLEHUB_TASK_HUB", help="Task hub name (DURABLEHUB_TASK_HUB)."
    ),
]
ConnectionOption = Annotated[
    str | None,
    typer.Option(
        "--connection-string",
        "-c",
        envvar="AzureWebJobsStorage",
        show_envvar=True,
        show_default=False,
        help="Storage connection string (AzureWebJobsStorage); AzureWebJobsStorage__* also work.",
    ),
]
PartitionsOption = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        "-p",
        envvar="DURABLEHUB_PARTITION_COUNT",
        help="Control-queue partitions, 1-16 (default 4).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line and exit code 1."""
    try:
        yield
    except DurableHubError as exc:
        raise fail(str(exc)) from None
    except ClientAuthenticationError as exc:
        raise fail(
            f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
            "SAS token or identity"
        ) from None
    except ServiceRequestError as exc:
        raise fail(
            f"cannot reach the storage account: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise fail(
                f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
                "SAS token or identity"
            ) from None
        raise fail(
            f"storage request failed (HTTP {exc.status_code}, {exc.error_code or 'no error code'})"
        ) from None


def load_settings(task_hub: str | None, connection_string: str | None, partitions: int | None) -> Any:
    from durablehub.settings import TaskHubSettings

    values: dict[str, Any] = {"retry_total": 1}  # an interactive command should fail fast
    if task_hub:
        values["task_hub"] = task_hub
    if connection_string:
        values["connection_string"] = connection_string
    if partitions is not None:
        values["partition_count"] = partitions
    with storage_errors():
        return TaskHubSettings(**values)


def with_hub(settings: Any, action: Callable[[Any], T]) -> T:
    from durablehub.taskhub.hub import TaskHub

    with storage_errors(), TaskHub(settings) as hub:
        return action(hub)


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


@hub_app.command("create")
def hub_create(
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create the task hub's queues, tables and containers (idempotent)."""
    settings = load_settings(task_hub, connection_string, partitions)
    info = with_hub(settings, lambda hub: hub.create())
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "taskHub": info.task_hub_name,
                    "partitionCount": info.partition_count,
                    "createdAt": info.created_at.isoformat(),
                }
            )
        )
    else:
        typer.echo(
            f"task hub {info.task_hub_name!r} is ready: {info.partition_count} partitions, "
            f"created {info.created_at:%Y-%m-%d %H:%M:%S} UTC"
        )


@hub_app.command("info")
def hub_info(
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a task hub's resources and queue lengths."""
    settings = load_settings(task_hub, connection_string, partitions)
    description = with_hub(settings, lambda hub: hub.describe())
    names = description.names
    data = {
        "taskHub": names.hub,
        "partitionCount": description.info.partition_count,
        "createdAt": description.info.created_at.isoformat(),
        "controlQueues": names.control_queues,
        "workItemQueue": names.work_item_queue,
        "historyTable": names.history_table,
        "instancesTable": names.instances_table,
        "leasesContainer": names.leases_container,
        "largeMessagesContainer": names.large_messages_container,
        "queueLengths": description.queue_lengths,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(
        f"task hub        {names.hub} ({description.info.partition_count} partitions, "
        f"created {description.info.created_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    typer.echo(f"tables          {names.history_table}, {names.instances_table}")
    typer.echo(f"containers      {names.leases_container}, {names.large_messages_container}")
    typer.echo("queues")
    for queue, length in description.queue_lengths.items():
        typer.echo(f"  {queue:<40} {length:>8} messages")


@hub_app.command("delete")
def hub_delete(
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every resource of a task hub, with all its instances and history."""
    settings = load_settings(task_hub, connection_string, None)
    if not yes:
        typer.confirm(f"Delete task hub {settings.task_hub!r} and all its instances?", abort=True)
    with_hub(settings, lambda hub: hub.delete())
    typer.echo(f"task hub {settings.task_hub!r} deleted.")


def import_app(target: str) -> Any:
    """Import ``module:attribute`` (or ``module``, finding its only App)."""
    import importlib

    from durablehub.app import App

    module_name, _, attribute = target.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"cannot import {module_name!r}: {exc}") from None
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, App):
            raise fail(f"{target!r} is not a durablehub.App (got {type(found).__name__})")
        return found
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        raise fail(
            f"module {module_name!r} has {len(apps)} durablehub.App objects; name one as {module_name}:app"
        )
    return apps[0]


@app.command()
def worker(
    target: Annotated[str, typer.Argument(help="The app to run, as module:attribute (e.g. myapp:app).")],
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a worker for an App until Ctrl-C or SIGTERM, then stop gracefully (leases released)."""
    import asyncio

    from durablehub.worker import Worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    user_app = import_app(target)
    settings = load_settings(task_hub, connection_string, partitions)
    settings = settings.model_copy(update={"retry_total": 3})

    def on_signal(signum: int) -> None:
        if stop.is_set():  # the second one: the user does not want to wait
            typer.echo(f"{signal.Signals(signum).name} again: exiting now, without finishing", err=True)
            exit_now(128 + signum)
        stop.set()

    async def run() -> Worker:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        async with Worker(user_app, settings) as running:
            typer.echo(
                f"worker {running.worker_id} running on task hub {settings.task_hub!r}; Ctrl-C stops it"
            )
            await stop.wait()
            typer.echo("stopping: finishing in-flight work and releasing partitions (again to force) ...")
        return running

    stop = asyncio.Event()
    with storage_errors():
        stopped = asyncio.run(run())
    typer.echo("stopped.")
    if stopped.activities_unfinished:  # their threads would keep the interpreter from exiting
        exit_now(0)


def exit_now(code: int) -> None:
    """Exit at once: threads running user code cannot be stopped, and would be waited for."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


# Commands in their own modules; they import the helpers above, so they come last.
from durablehub.cli import entities, instances, poison, serve, sidecar  # noqa: E402

app.add_typer(instances.app)
app.add_typer(entities.app, name="entity")
app.add_typer(poison.app, name="poison")
app.add_typer(serve.app)
app.add_typer(sidecar.app)
