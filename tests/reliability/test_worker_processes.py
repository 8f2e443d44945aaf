"""``durablehub worker APP --processes N``: N worker processes under one supervisor, sharing the
partitions through the leases; a killed one is restarted; SIGTERM drains them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]


def owners(hub: TaskHub) -> set[str]:
    return {s.lease.owner for s in hub.leases.list() if s.leased and s.lease.owner}


def child_pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r"worker process \d+ started \(pid (\d+)\)", log.read_text())]


def start_supervisor(settings: TaskHubSettings, log: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """``durablehub worker --processes 2`` on the hub of ``settings``, its output in ``log``."""
    assert settings.connection_string is not None
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "durablehub", "worker", "tests.e2e.apps:app", "--processes", "2"],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            **popen,
        )


def test_two_processes_share_the_hub_a_killed_one_is_restarted_and_sigterm_drains_both(
    hub: TaskHub, tmp_path: Path
) -> None:
    settings = hub.settings
    log = tmp_path / "supervisor.log"
    supervisor = start_supervisor(settings, log)
    try:
        wait_until(lambda: len(owners(hub)) == 2, 90, "two worker processes owning partitions")
        first = owners(hub)
        with DurableClient(settings) as client:
            ids = [client.schedule_new_orchestration("hello_cities") for _ in range(6)]
            for iid in ids:
                state = client.wait_for_orchestration_completion(iid, timeout=60)
                assert state.runtime_status is dh.OrchestrationStatus.COMPLETED

            killed = child_pids(log)[0]
            os.kill(killed, signal.SIGKILL)
            wait_until(lambda: len(child_pids(log)) == 3, 60, "the killed process to be started again")
            wait_until(lambda: len(owners(hub) - first) >= 1, 90, "the new process to own partitions")
            # Its leases expire (it could not release them) and the live processes take them.
            wait_until(
                lambda: not any(f"-{killed}-" in owner for owner in owners(hub)),
                90,
                "the dead one's leases taken",
            )
            again = client.schedule_new_orchestration("hello_cities")
            assert (
                client.wait_for_orchestration_completion(again, timeout=90).runtime_status.name == "COMPLETED"
            )

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=90) == 0, log.read_text()
        assert owners(hub) == set(), "every partition released on the way out"
        text = log.read_text()
        assert "[p1]" in text and "[p2]" in text, "one log, each line tagged with its process"
        assert "Traceback" not in text
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid in child_pids(log):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def test_one_sigterm_to_the_process_group_drains_every_process(hub: TaskHub, tmp_path: Path) -> None:
    """coreutils ``timeout`` and systemd's default KillMode signal the whole group: each child
    gets the group's SIGTERM and then the supervisor's forwarded one. That is one stop, not two."""
    log = tmp_path / "supervisor.log"
    # Its own process group, as under `timeout` or a systemd unit.
    supervisor = start_supervisor(hub.settings, log, start_new_session=True)
    try:
        wait_until(lambda: len(owners(hub)) == 2, 90, "two worker processes owning partitions")
        os.killpg(supervisor.pid, signal.SIGTERM)
        assert supervisor.wait(timeout=90) == 0, log.read_text()
        text = log.read_text()
        assert "SIGTERM again" not in text and "again to force" not in text, text
        assert "exit codes [0, 0]" in text, text
        assert owners(hub) == set(), "every partition released on the way out"
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
        for pid in child_pids(log):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def test_a_bad_process_count_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "durablehub", "worker", "tests.e2e.apps:app", "--processes", "many"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "--processes must be a number from 1 to 64 or 'auto'" in done.stderr
