"""Graceful shutdown of ``durablehub worker`` on SIGTERM and Ctrl-C (SIGINT).

The first signal stops taking work, lets running episodes and activities finish, releases
every partition lease on the way out (so another worker takes over at once instead of waiting
for the lease to expire) and exits 0. A second signal exits at once.

The workers run with 60 s leases: a partition that moves within the test's waits was
released, it cannot have expired.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import wait_until
from tests.reliability.shutdown_app import LOG_ENV

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """``durablehub worker tests.reliability.shutdown_app:app`` processes on one hub."""

    def __init__(self, settings: dh.TaskHubSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.notes = log_dir / "activities.log"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        assert self.settings.connection_string is not None
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "durablehub", "worker", "tests.reliability.shutdown_app:app"],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": self.settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": self.settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(self.settings.partition_count),
                "DURABLEHUB_LEASE_DURATION_SECONDS": "60",
                LOG_ENV: str(self.notes),
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        index = self.processes.index(process)
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")

    def running_activities(self, process: subprocess.Popen[bytes]) -> set[str]:
        """Activities the process started and has not finished."""
        lines = self.notes.read_text().splitlines() if self.notes.exists() else []
        started, ended = set(), set()
        for line in lines:
            pid, what, instance_id, task_id = line.split()
            if int(pid) == process.pid:
                (started if what == "start" else ended).add(f"{instance_id}#{task_id}")
        return started - ended

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(hub: TaskHub, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(hub.settings, tmp_path)
    yield running
    running.stop_all()


def tag(process: subprocess.Popen[bytes]) -> str:
    return f"-{process.pid}-"  # worker ids are host-pid-random


def held_by(hub: TaskHub, process: subprocess.Popen[bytes]) -> set[str]:
    return {
        s.lease.partition_id for s in hub.leases.list() if s.leased and tag(process) in (s.lease.owner or "")
    }


def test_sigterm_finishes_work_releases_leases_and_the_other_worker_takes_over(
    hub: TaskHub, workers: Workers
) -> None:
    victim, survivor = workers.start(), workers.start()
    wait_until(
        lambda: len(held_by(hub, victim)) == len(held_by(hub, survivor)) == 2,
        60,
        "two workers holding two partitions each",
    )
    ids = [f"batch-{i}" for i in range(12)]
    with DurableClient(hub.settings) as client:
        for iid in ids:
            client.schedule_new_orchestration("batch", input=3, instance_id=iid)
        wait_until(lambda: bool(workers.running_activities(victim)), 60, "activities running on the victim")
        partitions = held_by(hub, victim)
        assert len(partitions) == 2

        victim.send_signal(signal.SIGTERM)
        assert victim.wait(timeout=60) == 0, workers.log(victim)
        log = workers.log(victim)
        # On the way out it released its leases; left to expire, they would stay leased 60 s.
        assert held_by(hub, victim) == set(), log
        for partition in partitions:
            assert f"released partition {partition}" in log, log
        assert not workers.running_activities(victim), "an activity was cut off:\n" + log
        assert "stopped." in log and "Traceback" not in log, log

        # The survivor takes the partitions over now, not after the 60 s lease.
        wait_until(lambda: held_by(hub, survivor) >= partitions, 30, "the survivor to take over")
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=90)
            assert state is not None and state.runtime_status is dh.OrchestrationStatus.COMPLETED, iid
            assert state.get_output() == 5.0
    assert survivor.poll() is None, workers.log(survivor)


def test_activities_that_outlast_the_drain_are_left_behind(hub: TaskHub, workers: Workers) -> None:
    worker = workers.start(DURABLEHUB_ACTIVITY_DRAIN_TIMEOUT_SECONDS="2")
    wait_until(lambda: len(held_by(hub, worker)) == 4, 30, "the worker to own every partition")
    with DurableClient(hub.settings) as client:
        client.schedule_new_orchestration("stuck", input=600, instance_id="stuck")
        wait_until(lambda: bool(workers.running_activities(worker)), 30, "the activity to start")
        worker.send_signal(signal.SIGTERM)
        # Its thread cannot be stopped; the worker exits anyway, and the work item comes back.
        assert worker.wait(timeout=60) == 0, workers.log(worker)
        log = workers.log(worker)
        assert "1 activities still running after 2 s" in log and "stopped." in log, log
        assert held_by(hub, worker) == set(), log
        assert client.get_orchestration_state("stuck").runtime_status is dh.OrchestrationStatus.RUNNING  # type: ignore[union-attr]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_exits_at_once(hub: TaskHub, workers: Workers, signum: signal.Signals) -> None:
    worker = workers.start()
    wait_until(lambda: len(held_by(hub, worker)) == 4, 30, "the worker to own every partition")
    with DurableClient(hub.settings) as client:
        client.schedule_new_orchestration("stuck", input=600, instance_id="stuck")
        wait_until(lambda: bool(workers.running_activities(worker)), 30, "the activity to start")
    worker.send_signal(signum)
    # The partitions are released while the activity still runs (up to the 30 s drain).
    wait_until(lambda: not held_by(hub, worker), 30, "the leases to be released")
    assert worker.poll() is None, workers.log(worker)
    worker.send_signal(signum)
    assert worker.wait(timeout=30) == 128 + signum, workers.log(worker)
    assert f"{signum.name} again: exiting now" in workers.log(worker)
