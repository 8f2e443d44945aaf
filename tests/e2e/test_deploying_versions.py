"""README's worked example, end to end with worker processes: v1 instances in flight,
replay-check catching an incompatible v2 before it is deployed and passing the compatible
ones, v2 deployed beside v1 (versions side by side, DURABLEHUB_* variables), drain-check
turning green once the v1 instances finish, and the v2 instances completing after the swap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from durablehub.cli.main import app as cli_app
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.testing.chaos import stop_gracefully
from tests.e2e.conftest import ROOT, wait_until

pytestmark = pytest.mark.azurite
runner = CliRunner()


def _worker(settings: TaskHubSettings, target: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "durablehub", "worker", target, "--log-level", "INFO"],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(settings.partition_count),
                "DURABLEHUB_MAX_POLL_INTERVAL_SECONDS": "0.2",
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _cli(settings: TaskHubSettings, *args: str, code: int = 0) -> str:
    env = {
        "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
        "DURABLEHUB_TASK_HUB": settings.task_hub,
    }
    result = runner.invoke(cli_app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_deploying_v2_beside_v1_in_flight(hub_settings: TaskHubSettings, tmp_path: Path) -> None:
    settings = hub_settings
    processes: list[subprocess.Popen[bytes]] = []
    try:
        v1 = _worker(
            settings,
            "tests.e2e.deploy_apps:v1",
            tmp_path / "v1.log",
            DURABLEHUB_VERSION="1.0",
            DURABLEHUB_VERSION_MATCH_STRATEGY="strict",
        )
        processes.append(v1)
        with DurableClient(settings, default_version="1.0") as old_client:
            olds = [old_client.schedule_new_orchestration("ProcessOrder", input=f"o{i}") for i in range(2)]

            def waiting_for_payment(iid: str) -> bool:
                return any(isinstance(e, ev.TaskCompleted) for e in old_client.get_orchestration_history(iid))

            wait_until(lambda: all(waiting_for_payment(i) for i in olds), 60, "v1 instances waiting for Paid")

        # Before deploying: a reordered v2 would break them; the compatible ones would not.
        broken = json.loads(
            _cli(settings, "replay-check", "tests.e2e.deploy_apps:v2_reordered", "--json", code=1)
        )
        assert broken["checked"] == 2 and sorted(f["instanceId"] for f in broken["failing"]) == sorted(olds)
        problem = broken["failing"][0]["problem"]
        assert "TaskScheduled" in problem and "'Reserve'" in problem and "'Ship'" in problem
        for good in ("v2", "v2_patched"):
            assert (
                json.loads(_cli(settings, "replay-check", f"tests.e2e.deploy_apps:{good}", "--json"))[
                    "failing"
                ]
                == []
            )

        # Deploy v2 beside v1: it runs 1.0 and 2.0 (each with its own code); v1 rejects 2.0.
        processes.append(
            _worker(
                settings,
                "tests.e2e.deploy_apps:v2",
                tmp_path / "v2.log",
                DURABLEHUB_VERSION="2.0",
                DURABLEHUB_DEFAULT_VERSION="2.0",
                DURABLEHUB_VERSION_MATCH_STRATEGY="current_or_older",
            )
        )
        with DurableClient(settings, default_version="2.0") as client:
            news = [client.schedule_new_orchestration("ProcessOrder", input=f"n{i}") for i in range(4)]
            _cli(settings, "drain-check", "--version", "1.0", code=1)
            for iid in olds:
                client.raise_orchestration_event(iid, "Paid")
            for iid in olds:
                done = client.wait_for_orchestration_completion(iid, timeout=60)
                assert done.get_output() == "shipped v1" and done.version == "1.0"
            assert "drained" in _cli(settings, "drain-check", "--version", "1.0")
            _cli(settings, "drain-check", code=1)  # the v2 instances are in flight

            stop_gracefully([v1])  # the slot swap: every partition goes to v2 workers
            for iid in news:
                client.raise_orchestration_event(iid, "Paid")
            for iid in news:
                done = client.wait_for_orchestration_completion(iid, timeout=90)
                assert done.runtime_status is OrchestrationStatus.COMPLETED
                assert done.get_output() == "shipped v2" and done.version == "2.0"
        _cli(settings, "drain-check")
        counts = json.loads(_cli(settings, "versions", "--json"))
        assert counts == [
            {"name": "ProcessOrder", "version": "1.0", "runtimeStatus": "Completed", "count": 2},
            {"name": "ProcessOrder", "version": "2.0", "runtimeStatus": "Completed", "count": 4},
        ]
        listed = _cli(settings, "list", "--name", "ProcessOrder", "--version", "2.0")
        assert listed.splitlines()[0].split()[:3] == ["INSTANCE", "NAME", "VERSION"]
        assert sum("2.0" in line for line in listed.splitlines()[1:]) == 4
    finally:
        stop_gracefully(processes)


def test_deploying_a_patch_in_place_and_a_new_hub_for_the_next_slot(
    hub_settings: TaskHubSettings, tmp_path: Path
) -> None:
    """The other two strategies of the README: a patch deployed in place of v1 (instances in
    flight keep v1's path, new ones take the patch), and v2 on a hub of its own while the old
    hub drains (``drain-check`` against the old hub's settings)."""
    settings = hub_settings
    processes: list[subprocess.Popen[bytes]] = []
    try:
        v1 = _worker(settings, "tests.e2e.deploy_apps:v1", tmp_path / "v1.log")
        processes.append(v1)
        with DurableClient(settings) as client:
            olds = [client.schedule_new_orchestration("ProcessOrder", input=f"o{i}") for i in range(2)]

            def scheduled(iid: str) -> list[str]:
                return [
                    e.name for e in client.get_orchestration_history(iid) if isinstance(e, ev.TaskScheduled)
                ]

            wait_until(
                lambda: all(scheduled(i) == ["Reserve"] for i in olds), 60, "v1 instances waiting for Paid"
            )
            assert (
                json.loads(_cli(settings, "replay-check", "tests.e2e.deploy_apps:v2_patched", "--json"))[
                    "failing"
                ]
                == []
            )

            # A patch in place: the same hub, the v1 worker replaced by the patched code.
            stop_gracefully([v1])
            processes.append(_worker(settings, "tests.e2e.deploy_apps:v2_patched", tmp_path / "patched.log"))
            new = client.schedule_new_orchestration("ProcessOrder", input="n0")
            wait_until(
                lambda: scheduled(new) == ["Reserve", "Notify"], 60, "the new instance to take the patch"
            )
            for iid in [*olds, new]:
                client.raise_orchestration_event(iid, "Paid")
            for iid in [*olds, new]:
                assert (
                    client.wait_for_orchestration_completion(iid, timeout=60).get_output()
                    == "shipped patched"
                )
            assert [scheduled(i) for i in olds] == [["Reserve", "Ship"]] * 2  # v1's path, replayed
            assert scheduled(new) == ["Reserve", "Notify", "Ship"]

            # The next slot on a hub of its own: the old hub drains while the new one serves.
            late = client.schedule_new_orchestration("ProcessOrder", input="late")
            _cli(settings, "drain-check", code=1)
            slot = settings.model_copy(update={"task_hub": f"{settings.task_hub}V2"})
            processes.append(_worker(slot, "tests.e2e.deploy_apps:v2", tmp_path / "slot.log"))
            with DurableClient(slot, default_version="2.0") as slot_client:
                fresh = slot_client.schedule_new_orchestration("ProcessOrder", input="s0")
                wait_until(lambda: len(slot_client.get_orchestration_history(fresh)) > 3, 60, "the new slot")
                client.raise_orchestration_event(late, "Paid")
                client.wait_for_orchestration_completion(late, timeout=60)
                assert "drained" in _cli(settings, "drain-check")
                _cli(slot, "drain-check", code=1)  # the new slot's instance waits for Paid
    finally:
        stop_gracefully(processes)
