#!/usr/bin/env bash
# Run the whole test suite against a private Azurite that the fixtures start and stop.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/taskhub -k lease
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/unasync.py --check
exec .venv/bin/python -m pytest "$@"
