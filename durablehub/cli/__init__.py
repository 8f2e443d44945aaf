"""The ``durablehub`` command line (typer)."""
