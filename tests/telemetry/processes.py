"""Run ``durablehub`` commands as real subprocesses for the telemetry tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from durablehub.settings import TaskHubSettings

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def durablehub_process(
    args: list[str], settings: TaskHubSettings, log_path: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m durablehub ARGS`` on the settings' hub, stdout and stderr to ``log_path``;
    stopped with SIGTERM (gracefully) on exit."""
    assert settings.connection_string is not None
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "durablehub", *args],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def json_records(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object; fails naming the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records
