"""SDK workers come and go: several at once share the work, and the work of one killed with
SIGKILL mid-activity goes to another; every instance completes."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading

import pytest
from durabletask import client as dt_client
from durabletask import task

from durablehub.sidecar import Sidecar
from tests.sidecar import sdk_apps
from tests.sidecar.conftest import SdkWorkerFactory

REPO = pathlib.Path(__file__).resolve().parents[2]


def _until(condition, what: str, seconds: float = 60) -> None:
    pause = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_activity_loses_nothing(
    sidecar: Sidecar,
    address: str,
    sdk_worker: SdkWorkerFactory,
    sdk_client: dt_client.TaskHubGrpcClient,
    tmp_path: pathlib.Path,
) -> None:
    marker = tmp_path / "activity-started"
    doomed = subprocess.Popen(
        [sys.executable, "-m", "tests.sidecar.sdk_apps", address],
        cwd=REPO,
        env={**os.environ, "BLOCK_MARKER": str(marker)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ids = [sdk_client.schedule_new_orchestration(sdk_apps.fan_out, input=4) for _ in range(3)]
        _until(marker.exists, "the doomed worker to start an activity")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    _until(lambda: sidecar.workers_connected == 0, "the sidecar to see the worker gone")
    sdk_apps.register(sdk_worker()).start()
    for iid in ids:
        state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
        assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.COMPLETED
        assert state.serialized_output == str(10 * (0 + 1 + 2 + 3))


@pytest.mark.parametrize("workers", [2])
def test_connected_workers_share_the_work(
    workers: int, sidecar: Sidecar, sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    ran = [0] * workers
    lock = threading.Lock()

    def make(index: int):
        def square(ctx: task.ActivityContext, n: int) -> int:
            with lock:
                ran[index] += 1
            return n * n

        return square

    def squares(ctx: task.OrchestrationContext, count: int):
        return sum((yield task.when_all([ctx.call_activity("square", input=i) for i in range(count)])))

    for index in range(workers):
        w = sdk_worker()
        w.add_orchestrator(squares)
        w.add_activity(make(index))  # "square" in each worker, counted per worker
        w.start()
    _until(lambda: sidecar.workers_connected == workers, "both workers to connect")
    iid = sdk_client.schedule_new_orchestration(squares, input=40)
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.serialized_output == str(sum(i * i for i in range(40)))
    assert sum(ran) == 40
    assert all(count > 0 for count in ran), ran


def test_two_sidecars_share_one_hub(
    settings, sidecar: Sidecar, sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    """A second sidecar of the hub takes its share of the partitions, as a second worker does;
    each serves the SDK worker connected to it, and every instance completes."""
    from tests.sidecar.conftest import FAST

    with Sidecar(settings, port=0, options=FAST) as second:
        sdk_apps.register(sdk_worker()).start()  # on the first sidecar (the fixture's address)
        other = dt_worker_for(f"127.0.0.1:{second.port}")
        try:
            _until(
                lambda: (
                    sidecar.worker is not None
                    and second.worker is not None
                    and len(sidecar.worker.owned_partitions) == len(second.worker.owned_partitions) == 2
                ),
                "the partitions to balance",
            )
            ids = [sdk_client.schedule_new_orchestration(sdk_apps.fan_out, input=3) for _ in range(8)]
            for iid in ids:
                state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
                assert state is not None and state.serialized_output == str(10 * (0 + 1 + 2))
            assert sidecar.worker.episodes_run > 0 and second.worker.episodes_run > 0
        finally:
            other.stop()


def dt_worker_for(address: str):
    from durabletask import worker as dt_worker

    w = sdk_apps.register(dt_worker.TaskHubGrpcWorker(host_address=address))
    w.start()
    return w
