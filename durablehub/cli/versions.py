"""Deployment commands: versions, drain-check, replay-check.

``versions`` counts instances by name, version and status. ``drain-check`` exits 1 while
instances of a name or version are Pending, Running or Suspended (a pipeline's gate before a
slot swap). ``replay-check`` replays the stored histories of instances in flight against an
App's current code, writing nothing, and exits 1 if any would fail (``durablehub.replay_check``).
Each reads the Instances table page by page (no payloads).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from durablehub.cli.common import (
    ConnectionOption,
    JsonOption,
    PartitionsOption,
    TaskHubOption,
    import_app,
    typer_app,
    with_client,
)
from durablehub.cli.output import echo_json, table

app = typer_app()

NameOption = Annotated[str | None, typer.Option("--name", help="Orchestrator name.")]
VersionsOption = Annotated[
    list[str] | None,
    typer.Option("--version", help="Orchestration version (repeatable; '' for unversioned)."),
]
_IN_FLIGHT = ("PENDING", "RUNNING", "SUSPENDED")


def _query(name: str | None, versions: list[str] | None, statuses: Any = None) -> Any:
    from durablehub.state import OrchestrationQuery

    return OrchestrationQuery(name=name, versions=versions or None, runtime_status=statuses, page_size=1000)


def _in_flight() -> list[Any]:
    from durablehub.models import OrchestrationStatus

    return [OrchestrationStatus[s] for s in _IN_FLIGHT]


def _shown(version: str | None) -> str:
    return version or "(none)"


@app.command("versions")
def versions_command(
    name: NameOption = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Count instances by orchestrator name, version and status (entities left out)."""
    states = with_client(
        task_hub, connection_string, partitions, lambda c: c.get_all_orchestration_states(_query(name, None))
    )
    counts = Counter((s.name, s.version or "", s.runtime_status.table_name) for s in states)
    ordered = sorted(counts.items())
    if as_json:
        echo_json(
            [{"name": n, "version": v or None, "runtimeStatus": st, "count": c} for (n, v, st), c in ordered]
        )
        return
    rows = [[n, _shown(v), st, c] for (n, v, st), c in ordered]
    typer.echo(table(["NAME", "VERSION", "STATUS", "COUNT"], rows) if rows else "no instances")


@app.command("drain-check")
def drain_check(
    name: NameOption = None,
    versions: VersionsOption = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Exit 0 once no instance (of --name, --version) is Pending, Running or Suspended, else 1.

    An instance waiting on a timer or an event is Running: it is not drained.
    """
    query = _query(name, versions, _in_flight())
    states = with_client(
        task_hub, connection_string, partitions, lambda c: c.get_all_orchestration_states(query)
    )
    counts = Counter((s.name, s.version or "", s.runtime_status.table_name) for s in states)
    if as_json:
        echo_json(
            {
                "drained": not states,
                "inFlight": [
                    {"name": n, "version": v or None, "runtimeStatus": st, "count": c}
                    for (n, v, st), c in sorted(counts.items())
                ],
            }
        )
    else:
        what = " ".join(
            [
                f"name {name!r}" if name else "",
                f"version {', '.join(map(repr, versions))}" if versions else "",
            ]
        ).strip()
        if not states:
            typer.echo(
                f"drained: no instance{' of ' + what if what else ''} is pending, running or suspended"
            )
        else:
            rows = [[n, _shown(v), st, c] for (n, v, st), c in sorted(counts.items())]
            typer.echo(table(["NAME", "VERSION", "STATUS", "COUNT"], rows))
            typer.echo(f"not drained: {len(states)} instance(s) in flight", err=True)
    if states:
        raise typer.Exit(1)


@app.command("replay-check")
def replay_check(
    target: Annotated[str, typer.Argument(help="The App with the new code, as module:attribute.")],
    name: NameOption = None,
    versions: VersionsOption = None,
    limit: Annotated[int, typer.Option("--limit", "-k", min=1, help="Instances to check at most.")] = 100,
    include_finished: Annotated[
        bool, typer.Option("--include-finished", help="Replay finished instances' histories too.")
    ] = False,
    default_version: Annotated[
        str | None,
        typer.Option(
            "--default-version", envvar="DURABLEHUB_DEFAULT_VERSION", help="The new workers' default."
        ),
    ] = None,
    task_hub: TaskHubOption = None,
    connection_string: ConnectionOption = None,
    partitions: PartitionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay stored histories against the current code, writing nothing; exit 1 if any would fail.

    Each instance that would hit NonDeterminismError (or raise) on its next episode is named,
    with the first call that differs from its history.
    """
    from durablehub.errors import OrchestrationNotFoundError
    from durablehub.replay_check import check_history

    code = import_app(target)
    query = _query(name, versions, None if include_finished else _in_flight())

    def run(client: Any) -> list[tuple[Any, Any]]:
        checked: list[tuple[Any, Any]] = []
        page = client.query_orchestrations(query)
        while True:
            for state in page.items:
                if len(checked) >= limit:
                    return checked
                try:
                    history = client.get_orchestration_history(state.instance_id)
                except OrchestrationNotFoundError:  # purged meanwhile
                    continue
                checked.append((state, check_history(code, history, default_version=default_version or None)))
            if not page.continuation_token:
                return checked
            page = client.query_orchestrations(_next(query, page.continuation_token))

    checked = with_client(task_hub, connection_string, partitions, run)
    broken = [(s, v) for s, v in checked if v.problem is not None]
    if as_json:
        echo_json(
            {
                "checked": len(checked),
                "failing": [
                    {"instanceId": s.instance_id, "name": s.name, "version": s.version, "problem": v.problem}
                    for s, v in broken
                ],
            }
        )
    else:
        for state, verdict in broken:
            typer.echo(f"{state.instance_id} ({state.name} {_shown(state.version)}): {verdict.problem}")
        typer.echo(f"{len(checked)} instance(s) replayed, {len(broken)} would fail", err=bool(broken))
    if broken:
        raise typer.Exit(1)
    if not checked and not as_json:
        typer.echo("nothing to replay", err=True)


def _next(query: Any, token: str) -> Any:
    import dataclasses

    return dataclasses.replace(query, continuation_token=token)
