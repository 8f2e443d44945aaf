#!/usr/bin/env bash
# Set up a development environment from a fresh clone: a virtualenv with durablehub and its
# test dependencies (.venv/), and the pinned Azurite (azurite/node_modules/). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import durablehub, pytest, jwt, fastapi, uvicorn, httpx, grpc, durabletask" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch .venv/.installed
fi
if [ ! -x azurite/node_modules/.bin/azurite ] || [ azurite/package-lock.json -nt azurite/node_modules/.package-lock.json ]; then
    (cd azurite && npm ci --no-audit --no-fund --loglevel=error)
fi
# Chromium for the dashboard's browser tests (Playwright drives the system's browser; it
# downloads none). Installed from Debian's packages when missing and this runs as root, as in
# CI; elsewhere the browser tests say how to install it and are skipped.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
