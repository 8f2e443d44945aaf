"""Worker processes for end-to-end tests: ``durablehub worker tests.e2e.apps:app``, as users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.chaos import stop_gracefully

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcesses:
    """Starts, kills and stops ``durablehub worker`` processes on one task hub."""

    def __init__(self, settings: TaskHubSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1, **env: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
            process = subprocess.Popen(
                [sys.executable, "-m", "durablehub", "worker", "tests.e2e.apps:app", "--log-level", "INFO"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "AzureWebJobsStorage": self.settings.connection_string.get_secret_value(),
                    "DURABLEHUB_TASK_HUB": self.settings.task_hub,
                    "DURABLEHUB_PARTITION_COUNT": str(self.settings.partition_count),
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.processes.append(process)
            started.append(process)
        return started

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("worker-*.log"))
        )

    def stop_all(self) -> None:
        stop_gracefully(self.processes)


@pytest.fixture
def hub_settings(hub: TaskHub) -> TaskHubSettings:
    """The settings of a freshly created hub (the root conftest's ``hub`` fixture)."""
    return hub.settings


@pytest.fixture
def workers(hub_settings: TaskHubSettings, tmp_path: Path) -> Iterator[WorkerProcesses]:
    processes = WorkerProcesses(hub_settings, tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture
def client(hub_settings: TaskHubSettings) -> Iterator[DurableClient]:
    with DurableClient(hub_settings) as c:
        yield c


@pytest.fixture
def two_workers(workers: WorkerProcesses) -> WorkerProcesses:
    workers.start(2)
    return workers


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
