"""The ``durablehub`` command: the root app, assembled from the command modules."""

from __future__ import annotations

import sys

import typer

from durablehub.cli import entities, hub, instances, poison, run, serve

app = typer.Typer(
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
