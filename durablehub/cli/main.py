"""The ``durablehub`` command: the root app, assembled from the command modules."""

from __future__ import annotations

import os
import sys

import typer

from durablehub.cli import entities, hub, instances, poison, run, serve, sidecar, versions
from durablehub.cli.common import say_error, typer_app
from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import redact
from durablehub.telemetry.logs import configure_logging, json_logs
from durablehub.telemetry.provider import configure_tracing

app = typer_app(
    name="durablehub",
    help="Durable Functions in pure Python on an Azure Storage task hub.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(run.app)
app.add_typer(hub.app, name="hub")
app.add_typer(instances.app)
app.add_typer(entities.app, name="entity")
app.add_typer(poison.app, name="poison")
app.add_typer(serve.app)
app.add_typer(sidecar.app)
app.add_typer(versions.app)


def main() -> None:
    configure_tracing()  # from OTEL_*, when durablehub[otel] is installed; else a no-op
    try:
        try:
            if json_logs():  # every record of every command, even a one-shot one, is a JSON line
                configure_logging("WARNING")
        except ConfigurationError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            sys.exit(2)
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line (commands report what users can fix themselves)
        if os.environ.get("DURABLEHUB_TRACEBACK", "").lower() in ("1", "true", "yes"):
            raise
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "(no message)"
        say_error(
            f"unexpected {type(exc).__name__}: {redact(message)} "
            "(set DURABLEHUB_TRACEBACK=1 to see the traceback)"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
