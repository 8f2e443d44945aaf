"""Storage goes away mid-run: Azurite is stopped for ~10 s and restarted on the same ports and
data folder while two worker processes run ~30 orchestrations of mixed shapes.

Every instance must still complete with the right output, the workers must survive (backing
off and resuming, with one-line warnings rather than a traceback per poll), and no history
may hold an event twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import durablehub as dh
from durablehub.azurite import AzuriteProcess, free_port
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.chaos import ChaosRun, workload
from tests.conftest import new_hub_name
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 10.0


@pytest.fixture
def own_azurite(tmp_path: Path) -> Iterator[AzuriteProcess]:
    """An Azurite of this test alone (the session's is shared): fixed ports, a data folder."""
    process = AzuriteProcess(
        location=tmp_path / "azurite-data",
        blob_port=free_port(),
        queue_port=free_port(),
        table_port=free_port(),
    )
    with process:
        yield process


def duplicated_events(history: list[ev.HistoryEvent]) -> list[str]:
    """Events that answer, start or end the same thing twice: what a replayed commit leaves."""
    keys: list[str] = []
    for event in history:
        match event:
            case ev.ExecutionStarted() | ev.ExecutionCompleted():
                keys.append(type(event).__name__)
            case ev.TaskScheduled() | ev.TimerCreated() | ev.SubOrchestrationInstanceCreated():
                keys.append(f"scheduled {event.event_id}")
            case ev.TaskCompleted() | ev.TaskFailed() | ev.SubOrchestrationInstanceCompleted():
                keys.append(f"answer to {event.task_scheduled_id}")
            case ev.TimerFired():
                keys.append(f"answer to {event.timer_id}")
    return [key for key, n in Counter(keys).items() if n > 1]


def test_workers_ride_out_a_storage_outage(own_azurite: AzuriteProcess, tmp_path: Path) -> None:
    settings = dh.TaskHubSettings(
        task_hub=new_hub_name(), connection_string=own_azurite.connection_string, partition_count=4
    )
    cases = workload(30, prefix="rs", seed=3)
    run = ChaosRun(settings, tmp_path / "workers", workers=2, cwd=ROOT)
    try:
        with TaskHub(settings) as hub:
            hub.create()
        workers = [run.spawn(), run.spawn()]
        with TaskHub(settings) as hub:  # both started: a worker starting during the outage fails fast
            wait_until(
                lambda: len({s.lease.owner for s in hub.leases.list() if s.leased}) == 2,
                60,
                "both workers to own partitions",
            )
        with DurableClient(settings) as client:
            for case in cases:
                client.schedule_new_orchestration(
                    case.orchestrator, input=case.input, instance_id=case.instance_id
                )
                if case.event is not None:
                    client.raise_orchestration_event(case.instance_id, "Go", data=case.event)
        time.sleep(2.0)  # episodes, activities and timers in flight
        own_azurite.stop()
        down_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        assert all(w.poll() is None for w in workers), "a worker died while storage was down:\n" + run_logs(
            run
        )
        own_azurite.start()
        up_at = time.monotonic()

        with DurableClient(settings) as client:
            deadline = time.monotonic() + 150
            states: dict[str, dh.OrchestrationState] = {}
            while time.monotonic() < deadline:
                for case in cases:
                    state = client.get_orchestration_state(case.instance_id)
                    if state is not None and state.runtime_status.is_terminal:
                        states[case.instance_id] = state
                if len(states) == len(cases):
                    break
                time.sleep(1.0)
            finished_at = time.monotonic()
            logs = run_logs(run)
            stuck = [c.instance_id for c in cases if c.instance_id not in states]
            assert not stuck, f"not finished 150 s after the restart: {stuck}\n{logs}"
            wrong = [
                (c.instance_id, states[c.instance_id].runtime_status.name, states[c.instance_id].get_output())
                for c in cases
                if states[c.instance_id].runtime_status is not dh.OrchestrationStatus.COMPLETED
                or states[c.instance_id].get_output() != c.expected
            ]
            assert not wrong, f"wrong outcome: {wrong}\n{logs}"
            parents = [c.instance_id for c in cases if c.orchestrator == "parent"]
            children = [f"{iid}-c{i}" for iid in parents for i in range(2)]
            for iid in [c.instance_id for c in cases] + children:
                duplicates = duplicated_events(client.get_orchestration_history(iid))
                assert not duplicates, f"{iid}: history holds {duplicates} twice"

        assert all(w.poll() is None for w in workers), "a worker died after the restart:\n" + logs
        # The outage was ridden out with short warnings, not a traceback per poll. (Whether a
        # request gave up within the outage depends on the SDK's retries and the machine's
        # load: a loop may simply have waited in its retries until storage was back.)
        if "storage unreachable" in logs:
            assert "storage reachable again" in logs, logs
        assert logs.count("Traceback") == 0, logs
        print(
            f"\noutage {up_at - down_at:.1f} s; all {len(cases)} instances done "
            f"{finished_at - up_at:.1f} s after the restart"
        )
    finally:
        run.stop_all()
    assert all(w.returncode == 0 for w in run.processes), run_logs(run)


def run_logs(run: ChaosRun) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(run.log_dir.glob("worker-*.log")))
