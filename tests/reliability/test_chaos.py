"""The chaos run, small: three workers, a SIGKILL every few seconds, nothing lost, stuck or wrong.

``scripts/chaos.py`` is the full version (500 orchestrations, four workers); this one runs in
CI with the same code (``durablehub.testing.chaos``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import durablehub as dh
from durablehub.testing.chaos import ChaosRun, workload
from tests.conftest import StorageEmulator, new_hub_name

pytestmark = [pytest.mark.azurite, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]


def test_kills_lose_nothing(azurite: StorageEmulator, tmp_path: Path) -> None:
    settings = dh.TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, partition_count=4
    )
    run = ChaosRun(settings, tmp_path, workers=3, cwd=ROOT)
    try:
        # Kills stop after 20 s so the run ends; the workload keeps every worker busy until then.
        report = run.run(workload(70, prefix="ci"), kill_every=(2.0, 4.0), kill_for=20, deadline=240)
    finally:
        run.stop_all()
    summary = "\n".join(report.lines())
    assert report.ok, summary
    assert report.completed == 70, summary
    assert report.kills, "no worker was killed: the test proved nothing\n" + summary
    assert report.activity_executions >= 70, summary
    # Every dead worker's partitions were leased again (how fast is a figure, printed, not
    # asserted: this machine is shared).
    untaken = [k for k in report.kills if k.epochs and k.takeover_seconds is None]
    assert not untaken, summary
    print(summary)
