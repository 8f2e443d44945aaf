"""Hub commands: ``durablehub hub create|info|delete``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from durablehub.cli.common import (
    ConnectionOption,
    JsonOption,
    PartitionsOption,
    TaskHubOption,
    load_settings,
    typer_app,
    with_hub,
)

app = typer_app(name="hub", help="Create, inspect and delete task hubs.", no_args_is_help=True)


@app.command("create")
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


@app.command("info")
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
        "missing": description.missing,
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
    if description.missing:
        typer.echo(
            f"not made yet    {', '.join(description.missing)} "
            "(a start makes what it needs; a worker or 'durablehub hub create', all of it)"
        )


@app.command("delete")
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
