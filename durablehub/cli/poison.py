"""Poison commands: ``durablehub poison list|requeue``.

``{hub}-poison`` holds the messages workers gave up on: unreadable or foreign ones at once,
others after ``max_dequeue_count`` dequeues. ``list`` peeks at them (``--json`` for scripts),
the oldest 32 at most (Azure peeks no deeper), and says about how many more there are;
``requeue`` sends each back, byte for byte, to the queue it came from and deletes it from the
poison queue -- typically after the cause (a bug, a missing activity) is fixed.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from durablehub.cli.common import (
    ConnectionOption,
    JsonOption,
    PartitionsOption,
    TaskHubOption,
    fail,
    load_settings,
    typer_app,
    with_hub,
)
from durablehub.cli.output import short, table
from durablehub.http.payloads import iso

app = typer_app(name="poison", help="List and requeue poison messages.", no_args_is_help=True)


def _payload(entry: Any) -> dict[str, Any]:
    record = entry.record
    return {
        "messageId": entry.message_id,
        "insertedTime": iso(entry.inserted_on),
        "dequeueCount": record.dequeue_count if record.original_queue else None,
        "instanceId": record.instance_id,
        "eventType": record.event_type,
        "originalQueue": record.original_queue,
        "originalMessageId": record.original_message_id,
        "originalInsertedTime": iso(record.original_inserted_on),
        "reason": record.reason or None,
        "instanceWasTold": record.reported,
    }


@app.command("list")
def list_command(
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the oldest messages in the poison queue (at most 32, Azure's peek limit) and how
    many more there are; listing changes nothing in the queue."""
    settings = load_settings(task_hub, connection_string, partitions)

    def read(hub: Any) -> Any:
        hub.open()
        return hub.poison.peek()

    listing = with_hub(settings, read)
    entries = sorted(listing.entries, key=lambda e: (e.inserted_on is None, e.inserted_on))
    payloads = [_payload(e) for e in entries]
    if listing.more:
        typer.echo(
            f"showing the oldest {len(payloads)} of about {listing.approximate_count} poison messages "
            f"in {settings.names.poison_queue}: a queue can be peeked only {len(payloads)} deep "
            "(requeue takes them all: 'durablehub poison requeue --all')",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps(payloads, indent=2, ensure_ascii=False))
        return
    if not payloads:
        typer.echo(f"no poison messages in {settings.names.poison_queue}")
        return
    rows = [
        [
            p["messageId"],
            (p["insertedTime"] or "").split(".")[0].replace("T", " "),
            p["dequeueCount"] if p["dequeueCount"] is not None else "-",
            p["instanceId"] or "-",
            p["eventType"] or "-",
            p["originalQueue"] or "-",
            short(p["reason"] or "-", 100),
        ]
        for p in payloads
    ]
    typer.echo(
        table(["MESSAGE ID", "POISONED (UTC)", "DEQUEUES", "INSTANCE", "EVENT", "QUEUE", "REASON"], rows)
    )


@app.command()
def requeue(
    message_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[MESSAGE_ID]...", help="Poison message ids (see 'list').")
    ] = None,
    all_messages: Annotated[bool, typer.Option("--all", help="Requeue every poison message.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also requeue unreadable messages and work items whose instance was told."
        ),
    ] = False,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
) -> None:
    """Send poison messages back, unchanged, to the queue they belong to."""
    if all_messages == bool(message_ids):
        raise fail("name the poison messages to requeue (their ids, from 'durablehub poison list'), or --all")
    settings = load_settings(task_hub, connection_string, partitions)

    def run(hub: Any) -> Any:
        hub.open()  # the routing of a bare message needs the hub's real partition count
        return hub.poison.requeue(None if all_messages else message_ids, force=force)

    result = with_hub(settings, run)
    for message_id, queue in result.requeued:
        typer.echo(f"requeued {message_id} to {queue}")
    problems = [f"{mid} was not requeued: {why}" for mid, why in result.refused]
    problems += [f"no poison message {mid!r} in {settings.names.poison_queue}" for mid in result.missing]
    for problem in problems[:-1]:
        typer.secho(f"error: {problem}", fg=typer.colors.RED, err=True)
    if problems:
        raise fail(problems[-1])
    if not result.requeued:
        typer.echo(f"no poison messages in {settings.names.poison_queue}")
