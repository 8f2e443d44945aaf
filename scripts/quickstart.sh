#!/usr/bin/env bash
# From a fresh clone: install everything, start Azurite on loopback (data in .azurite/),
# run the main job against it, and stop Azurite again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
