"""A worker process killed with SIGKILL mid-run: its partitions move, every instance completes."""

from __future__ import annotations

import time

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import WorkerProcesses, wait_until

pytestmark = pytest.mark.azurite


def test_sigkill_mid_run_loses_no_instance(client: DurableClient, workers: WorkerProcesses) -> None:
    first, second = workers.start(2)
    with TaskHub(workers.settings) as hub:
        wait_until(
            lambda: (
                {s.lease.owner for s in hub.leases.list() if s.leased}
                and len({s.lease.owner for s in hub.leases.list() if s.leased}) == 2
            ),
            40,
            "both workers own partitions",
        )
        ids = [
            client.schedule_new_orchestration("slow_chain", input={"steps": 6, "seconds": 0.5})
            for _ in range(8)
        ]
        ids += [client.schedule_new_orchestration("fan_out_fan_in", input=30) for _ in range(4)]
        wait_until(
            lambda: (
                sum(
                    1
                    for i in ids
                    if (s := client.get_orchestration_state(i, fetch_payloads=False)) is not None
                    and s.runtime_status == dh.OrchestrationStatus.RUNNING
                )
                >= 4
            ),
            30,
            "instances running",
        )
        time.sleep(1.0)
        workers.kill(first)
        killed_at = time.monotonic()
        for iid in ids:
            state = client.wait_for_orchestration_completion(iid, timeout=120)
            assert state.runtime_status == dh.OrchestrationStatus.COMPLETED, workers.logs()
        took_over = time.monotonic() - killed_at
        outputs = [client.get_orchestration_state(i).get_output() for i in ids]
        assert outputs == [6] * 8 + [sum(2 * i for i in range(30))] * 4
        owners = {s.lease.owner for s in hub.leases.list() if s.leased}
        assert len(owners) == 1 and second.poll() is None
        assert took_over < 120
