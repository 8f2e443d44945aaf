#!/usr/bin/env bash
# Run the whole test suite against a private Azurite that the fixtures start and stop, after
# the static checks: the generated sync twins, ruff (lint and format) and mypy.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/taskhub -k lease
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/unasync.py --check
.venv/bin/ruff check durablehub tests scripts
.venv/bin/ruff format --check durablehub tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
