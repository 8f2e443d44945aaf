"""Entity commands: ``durablehub entity get|signal|list``.

Readable output by default, ``--json`` for scripts (the HTTP API's entity payloads). Errors are
one line on stderr and exit code 1: an unknown entity, a name or key that cannot be an entity
id, input or a time that cannot be parsed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from durablehub.cli.common import (
    ConnectionOption,
    JsonOption,
    PartitionsOption,
    TaskHubOption,
    fail,
    json_argument,
    typer_app,
    with_client,
)
from durablehub.cli.output import echo_json, short, table, when

app = typer_app(name="entity", help="Read, list and signal durable entities.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The entity name (case-insensitive).")]
KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="The entity key.")]


def _entity_id(name: str, key: str) -> Any:
    from durablehub.entities.entity_id import EntityInstanceId

    try:
        return EntityInstanceId(name, key)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--at {text!r} is not an ISO 8601 time, e.g. 2026-01-01T12:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def get(
    name: NameArgument,
    key: KeyArgument,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an entity's state, last operation time, waiting requests and lock holder."""
    from durablehub.http.payloads import entity_payload

    entity = _entity_id(name, key)
    metadata = with_client(task_hub, connection_string, partitions, lambda c: c.get_entity(entity))
    if metadata is None:
        raise fail(f"no entity {str(entity)!r} (it does not exist or has no state)")
    payload = entity_payload(metadata, show_state=True)
    if as_json:
        echo_json(payload)
        return
    fields = [
        ("entity", str(entity)),
        ("updated", when(payload["lastOperationTime"])),
        ("waiting", payload["backlogQueueSize"]),
        ("locked by", payload["lockedBy"] or "-"),
        ("state", json.dumps(payload["state"], ensure_ascii=False)),
    ]
    for label, value in fields:
        typer.echo(f"{label:<11}{value}")


@app.command()
def signal(
    name: NameArgument,
    key: KeyArgument,
    operation: Annotated[str, typer.Argument(metavar="OP", help="The operation.")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="The operation's input as JSON.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Deliver at this time (ISO 8601, UTC if naive).")
    ] = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
) -> None:
    """Send a one-way operation to an entity (created by its first operation)."""
    entity = _entity_id(name, key)
    data = json_argument(input, "input")
    due = _time(at)
    with_client(
        task_hub,
        connection_string,
        partitions,
        lambda c: c.signal_entity(entity, operation, data, signal_time=due),
    )
    typer.echo(f"signal {operation!r} sent to {entity}" + (f", due {due.isoformat()}" if due else ""))


@app.command("list")
def list_command(
    prefix: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME-PREFIX", help="Entity name prefix (case-insensitive), or '@name@key-prefix'."
        ),
    ] = None,
    state: Annotated[bool, typer.Option("--state", help="Also show each entity's state.")] = False,
    top: Annotated[int, typer.Option("--top", "-n", min=1, max=1000, help="Entities per page.")] = 50,
    continuation: Annotated[
        str | None, typer.Option("--continuation-token", help="Page to show, from a previous list.")
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the entities that have state, by name prefix."""
    import dataclasses

    from durablehub.entities.metadata import EntityQuery
    from durablehub.http.payloads import entity_payload

    def run(client: Any) -> tuple[list[Any], str | None]:
        query = EntityQuery(
            instance_id_starts_with=prefix or None,
            include_state=state,
            page_size=top,
            continuation_token=continuation,
        )
        page = client.query_entities(query)
        items = list(page.items)
        while all_pages and page.continuation_token:
            page = client.query_entities(
                dataclasses.replace(query, continuation_token=page.continuation_token)
            )
            items += page.items
        return items, page.continuation_token

    items, token = with_client(task_hub, connection_string, partitions, run)
    payloads = [entity_payload(m, show_state=state) for m in items]
    if as_json:
        echo_json({"entities": payloads, "continuationToken": token})
        return
    headers = ["NAME", "KEY", "UPDATED", "WAITING", "LOCKED BY"] + (["STATE"] if state else [])
    rows = [
        [
            p["entityId"]["name"],
            p["entityId"]["key"],
            when(p["lastOperationTime"]),
            p["backlogQueueSize"],
            p["lockedBy"] or "-",
        ]
        + ([short(p["state"], 60)] if state else [])
        for p in payloads
    ]
    typer.echo(table(headers, rows))
    if token:
        typer.echo(f"more: --continuation-token '{token}' (or --all)", err=True)
