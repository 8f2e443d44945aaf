"""Instance commands: start, status, list, history, raise-event, terminate, suspend, resume,
rewind, restart, purge.

Readable tables by default, ``--json`` for scripts (the HTTP API's payload shapes). Errors
are one line on stderr and exit code 1: an unknown instance, an operation the instance's
state refuses, input that is not JSON, a wait that timed out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
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

app = typer_app()

InstanceArgument = Annotated[str, typer.Argument(help="The instance id.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", "-r", help="Why; recorded in the history.")]
StatusesOption = Annotated[
    str | None, typer.Option("--status", "-s", help="Runtime statuses, comma-separated: Running,Failed,...")
]
FromOption = Annotated[
    datetime | None, typer.Option("--created-from", help="Created at or after (ISO 8601, UTC if naive).")
]
ToOption = Annotated[datetime | None, typer.Option("--created-to", help="Created at or before.")]


def _statuses(text: str | None) -> list[Any] | None:
    from durablehub.models import OrchestrationStatus

    if not text:
        return None
    by_name = {s.table_name.lower(): s for s in OrchestrationStatus} | {
        s.name.lower(): s for s in OrchestrationStatus
    }
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        known = ", ".join(s.table_name for s in OrchestrationStatus)
        raise fail(f"unknown status {', '.join(unknown)}; use {known}")
    return [by_name[n.lower()] for n in names]


def _print_status(payload: dict[str, Any]) -> None:
    fields = [
        ("instance", payload["instanceId"]),
        ("name", payload["name"]),
        ("status", payload["runtimeStatus"]),
        ("created", when(payload["createdTime"])),
        ("updated", when(payload["lastUpdatedTime"])),
        ("input", json.dumps(payload.get("input"), ensure_ascii=False)),
        ("custom status", json.dumps(payload.get("customStatus"), ensure_ascii=False)),
        ("output", json.dumps(payload.get("output"), ensure_ascii=False)),
    ]
    for label, value in fields:
        typer.echo(f"{label:<14}{value}")


def _history_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for event in events:
        detail = event.get("FunctionName") or event.get("Name") or ""
        if "InstanceId" in event:
            detail = f"{detail} ({event['InstanceId']})".strip()
        if "Result" in event or "Input" in event:
            detail = f"{detail} {short(event.get('Result', event.get('Input')), 60)}".strip()
        if "FailureDetails" in event:
            failure = event["FailureDetails"]
            detail = f"{detail} {failure.get('errorType')}: {failure.get('errorMessage')}".strip()
        rows.append([event["EventId"], event["EventType"], when(event["Timestamp"]), detail])
    return rows


# ----------------------------------------------------------------------------------- commands


@app.command()
def start(
    name: Annotated[str, typer.Argument(help="The orchestrator's name.")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON.")] = None,
    instance_id: Annotated[
        str | None, typer.Option("--id", help="Instance id (default: a new uuid).")
    ] = None,
    wait: Annotated[
        float | None, typer.Option("--wait", "-w", help="Wait up to this many seconds for the result.")
    ] = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start an orchestration instance and print its id (with --wait, its result)."""
    from durablehub.http.payloads import status_payload

    data = json_argument(input, "input")

    def run(client: Any) -> tuple[str, Any]:
        iid = client.schedule_new_orchestration(name, input=data, instance_id=instance_id)
        return iid, client.wait_for_orchestration_completion(iid, timeout=wait) if wait is not None else None

    iid, state = with_client(task_hub, connection_string, partitions, run)
    if state is None:
        typer.echo(json.dumps({"id": iid}) if as_json else iid)
        return
    payload = status_payload(state)
    echo_json(payload) if as_json else _print_status(payload)
    if payload["runtimeStatus"] == "Failed":
        raise fail(f"orchestration instance {iid!r} failed: {payload['output']}")


@app.command()
def status(
    instance_id: InstanceArgument,
    history: Annotated[bool, typer.Option("--history", help="Also show the history events.")] = False,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an instance's status, input, output and custom status."""
    from durablehub.errors import OrchestrationNotFoundError
    from durablehub.http.payloads import status_payload

    def run(client: Any) -> dict[str, Any]:
        state = client.get_orchestration_state(instance_id)
        if state is None:
            raise OrchestrationNotFoundError(instance_id)
        events = client.get_orchestration_history(instance_id) if history else None
        return status_payload(state, history=events, show_history_output=True)

    payload = with_client(task_hub, connection_string, partitions, run)
    if as_json:
        echo_json(payload)
        return
    _print_status(payload)
    if "failureDetails" in payload and payload["failureDetails"].get("stackTrace"):
        typer.echo(
            f"{'stack trace':<14}"
            + payload["failureDetails"]["stackTrace"].rstrip().replace("\n", "\n" + " " * 14)
        )
    if history:
        typer.echo("")
        typer.echo(table(["ID", "EVENT", "TIME", "DETAIL"], _history_rows(payload["historyEvents"])))


@app.command("history")
def history_command(
    instance_id: InstanceArgument,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the history events of an instance's current generation."""
    from durablehub.http.payloads import history_payload

    events = with_client(
        task_hub, connection_string, partitions, lambda c: c.get_orchestration_history(instance_id)
    )
    shown = history_payload(events, show_output=True)
    if as_json:
        echo_json(shown)
    else:
        typer.echo(table(["ID", "EVENT", "TIME", "DETAIL"], _history_rows(shown)))


@app.command("list")
def list_command(
    statuses: StatusesOption = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Instance id prefix.")] = None,
    created_from: FromOption = None,
    created_to: ToOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Orchestrator name.")] = None,
    versions: Annotated[
        list[str] | None,
        typer.Option("--version", help="Orchestration version (repeatable; '' for unversioned)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, max=1000, help="Instances per page.")] = 50,
    continuation: Annotated[
        str | None, typer.Option("--continuation-token", help="Page to show, from a previous list.")
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List instances, filtered by status, id prefix, creation time, name and version."""
    from durablehub.http.payloads import status_payload
    from durablehub.state import OrchestrationQuery

    query = OrchestrationQuery(
        created_time_from=created_from,
        created_time_to=created_to,
        runtime_status=_statuses(statuses),
        instance_id_prefix=prefix,
        page_size=top,
        continuation_token=continuation,
        name=name,
        versions=versions or None,
    )

    def run(client: Any) -> tuple[list[Any], str | None]:
        page = client.query_orchestrations(query)
        items = list(page.items)
        while all_pages and page.continuation_token:
            page = client.query_orchestrations(
                OrchestrationQuery(**{**vars_of(query), "continuation_token": page.continuation_token})
            )
            items += page.items
        return items, page.continuation_token

    items, token = with_client(task_hub, connection_string, partitions, run)
    payloads = [status_payload(s, show_input=False) for s in items]
    if as_json:
        echo_json({"instances": payloads, "continuationToken": token})
        return
    versioned = any("version" in p for p in payloads)  # the column only where it says something
    rows = [
        [
            p["instanceId"],
            p["name"],
            *([p.get("version", "")] if versioned else []),
            p["runtimeStatus"],
            when(p["createdTime"]),
            when(p["lastUpdatedTime"]),
        ]
        for p in payloads
    ]
    headers = ["INSTANCE", "NAME", *(["VERSION"] if versioned else []), "STATUS", "CREATED", "UPDATED"]
    typer.echo(table(headers, rows))
    if token:
        typer.echo(f"more: --continuation-token '{token}' (or --all)", err=True)


def vars_of(query: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(query, f.name) for f in dataclasses.fields(query)}


@app.command("raise-event")
def raise_event(
    instance_id: InstanceArgument,
    event_name: Annotated[str, typer.Argument(help="The event name the orchestrator waits for.")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="Event data as JSON.")] = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
) -> None:
    """Send an event to a running instance."""
    value = json_argument(data, "data")
    with_client(
        task_hub,
        connection_string,
        partitions,
        lambda c: c.raise_orchestration_event(instance_id, event_name, data=value),
    )
    typer.echo(f"event {event_name!r} sent to {instance_id}")


def _operation(verb: str, call: Callable[[Any, str, str | None], Any]) -> Callable[..., None]:
    def command(
        instance_id: InstanceArgument,
        reason: ReasonOption = None,
        task_hub: TaskHubOption = None,
        connection_string: ConnectionOption = None,
        partitions: PartitionsOption = None,
    ) -> None:
        with_client(task_hub, connection_string, partitions, lambda c: call(c, instance_id, reason))
        typer.echo(f"{verb} requested for {instance_id}")

    return command


app.command("terminate", help="Terminate a running instance (the reason becomes its output).")(
    _operation("terminate", lambda c, iid, reason: c.terminate_orchestration(iid, output=reason))
)
app.command("suspend", help="Suspend a running instance.")(
    _operation("suspend", lambda c, iid, reason: c.suspend_orchestration(iid, reason=reason))
)
app.command("resume", help="Resume a suspended instance.")(
    _operation("resume", lambda c, iid, reason: c.resume_orchestration(iid, reason=reason))
)
app.command("rewind", help="Rewind a failed instance: its failed calls run again.")(
    _operation("rewind", lambda c, iid, reason: c.rewind_orchestration(iid, reason=reason))
)


@app.command()
def restart(
    instance_id: InstanceArgument,
    new_id: Annotated[bool, typer.Option("--new-id", help="Restart under a new instance id.")] = False,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start an instance again with its original input; print the (new) instance id."""
    iid = with_client(
        task_hub,
        connection_string,
        partitions,
        lambda c: c.restart_orchestration(instance_id, restart_with_new_instance_id=new_id),
    )
    typer.echo(json.dumps({"id": iid}) if as_json else iid)


@app.command()
def purge(
    instance_id: Annotated[
        str | None, typer.Argument(help="One instance; or filter with the options.")
    ] = None,
    statuses: StatusesOption = None,
    created_from: FromOption = None,
    created_to: ToOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Purge by filter without asking.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="Purge by filter: start no instance after this long (run it again for the rest).",
        ),
    ] = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the history and status of finished instances: one, or all that match the filters."""
    from durablehub.errors import OrchestrationNotFoundError

    if instance_id is not None:
        if statuses or created_from or created_to or timeout is not None:
            raise fail("give an instance id or filters, not both")

        def purge_one(client: Any) -> Any:
            result = client.purge_orchestration(instance_id)
            if result.deleted_instance_count == 0:
                raise OrchestrationNotFoundError(instance_id)
            return result

        result = with_client(task_hub, connection_string, partitions, purge_one)
    else:
        if not (statuses or created_from or created_to):
            raise fail("give an instance id, or at least one filter (--status, --created-from, --created-to)")
        runtime_status = _statuses(statuses)
        if not yes:
            typer.confirm("Purge every finished instance that matches the filters?", abort=True)
        result = with_client(
            task_hub,
            connection_string,
            partitions,
            lambda c: c.purge_orchestrations_by(
                created_time_from=created_from,
                created_time_to=created_to,
                runtime_status=runtime_status,
                progress=None if as_json else _progress("purge"),  # JSON is for scripts
                timeout=timeout,
            ),
        )
    count = result.deleted_instance_count
    if as_json:
        typer.echo(json.dumps({"instancesDeleted": count, "isComplete": result.is_complete}))
    else:
        left = ""
        if not result.is_complete:
            why = "the timeout ran out, or " if timeout is not None else ""
            left = f"; not all: {why}an instance was written to while being purged. Run it again to finish"
        typer.echo(f"purged {count} instance{'s' if count != 1 else ''}{left}")


def _progress(verb: str, every: int = 100) -> Callable[[int, int], None]:
    """Progress of a bulk operation on stderr: every ``every`` instances, and at the end."""

    def report(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            typer.echo(f"{verb}: {done} of {total} instances done", err=True)

    return report
