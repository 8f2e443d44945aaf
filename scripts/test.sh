#!/usr/bin/env bash
# Run the whole test suite against a private Azurite that the fixtures start and stop, after
# the static checks: no binaries tracked by git, the generated sync twins (and ruff's list of
# them), ruff (lint and format) and mypy.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/taskhub -k lease (add -n 0 to
# run in this one process, as a debugger needs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/check_tree.py
.venv/bin/python scripts/unasync.py --check
.venv/bin/ruff check durablehub tests scripts
.venv/bin/ruff format --check durablehub tests scripts
.venv/bin/mypy
# One pytest process per core (at most 4), each with its own Azurite; a file's tests stay
# together so that its module fixtures (workers, hubs) start once. `-n 0` runs in one process.
exec .venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
