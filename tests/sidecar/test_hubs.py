"""Which hubs a sidecar serves, and when it takes their partitions: only the hub it was started
for (or its allow-list), never one named by a call's ``taskhub`` metadata; no partitions while
no SDK worker is connected to run their work, taken within a balance pass of the first worker's
connection and released when the last one leaves."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable

import grpc
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient
from durabletask import client as dt_client
from durabletask import worker as dt_worker
from grpc_health.v1 import health_pb2, health_pb2_grpc

from durablehub.azurite import free_port
from durablehub.errors import ConfigurationError
from durablehub.settings import TaskHubSettings
from durablehub.sidecar import Sidecar
from durablehub.sidecar.server import STANDBY_DELAY_SECONDS
from durablehub.taskhub.hub import TaskHub
from tests.conftest import new_hub_name
from tests.sidecar import sdk_apps
from tests.sidecar.conftest import FAST, SdkWorkerFactory


def _until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        pause.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _resources(settings: TaskHubSettings, hub: str) -> list[str]:
    """Tables and queues whose names start with ``hub`` (any case)."""
    connection = settings.connection_string.get_secret_value()  # type: ignore[union-attr]
    prefix = hub.lower()
    with TableServiceClient.from_connection_string(connection) as tables:
        found = [t.name for t in tables.list_tables() if t.name.lower().startswith(prefix)]
    with QueueServiceClient.from_connection_string(connection) as queues:
        found += [q.name for q in queues.list_queues(name_starts_with=prefix)]
    return found


def _leased(settings: TaskHubSettings) -> list[str]:
    with TaskHub(settings) as hub:
        return [s.lease.partition_id for s in hub.leases.list() if s.leased and s.lease.owner]


def test_a_call_naming_another_hub_is_refused_and_creates_nothing(
    sidecar: Sidecar, address: str, settings: TaskHubSettings
) -> None:
    other = new_hub_name()
    stranger = dt_client.TaskHubGrpcClient(host_address=address, metadata=[("taskhub", other)])
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stranger.schedule_new_orchestration("Elsewhere", instance_id="in-other-hub")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value
        details = str(refused.value.details())
        assert other in details and settings.task_hub in details, details
    finally:
        stranger.close()
    assert _resources(settings, other) == []


def test_an_allow_list_serves_each_hub_it_names(settings: TaskHubSettings) -> None:
    second = new_hub_name()
    with Sidecar(settings, port=0, options=FAST, task_hubs=[settings.task_hub, second]) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        default = dt_client.TaskHubGrpcClient(host_address=address)
        other = dt_client.TaskHubGrpcClient(host_address=address, metadata=[("taskhub", second.upper())])
        try:
            other.schedule_new_orchestration("Elsewhere", instance_id="in-second")
            assert default.get_orchestration_state("in-second") is None  # not in the default hub
            state = other.get_orchestration_state("in-second")
            assert state is not None and state.name == "Elsewhere"
        finally:
            default.close()
            other.close()


def _health(address: str) -> str:
    """The sidecar's status on the standard gRPC health service."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="TaskHubSidecarService"), timeout=10
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def test_partitions_are_taken_while_a_worker_is_connected_and_given_back_after(
    sidecar: Sidecar,
    address: str,
    sdk_worker: SdkWorkerFactory,
    sdk_client: dt_client.TaskHubGrpcClient,
    settings: TaskHubSettings,
) -> None:
    worker = sidecar.worker
    assert worker is not None
    time.sleep(FAST.balance_interval_seconds + 1)  # a balance pass had its chance
    assert worker.owned_partitions == [] and _leased(settings) == [], "partitions taken with no SDK worker"
    assert not sidecar.ready and _health(address) == "NOT_SERVING"
    iid = sdk_client.schedule_new_orchestration(sdk_apps.fan_out, input=2)  # client RPCs still work
    state = sdk_client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.PENDING

    sdk = sdk_apps.register(sdk_worker())
    started = time.monotonic()
    sdk.start()
    _until(lambda: len(worker.owned_partitions) == settings.partition_count, "the partitions to be taken")
    taken = time.monotonic() - started
    print(f"from the SDK worker's start to {settings.partition_count} partitions owned: {taken:.3f} s")
    assert taken < 2.0, f"partitions taken {taken:.1f} s after the first worker connected"
    _until(lambda: sidecar.ready, "the sidecar to say it is ready")
    assert _health(address) == "SERVING"
    done = sdk_client.wait_for_orchestration_completion(iid, timeout=30)
    assert done is not None and done.runtime_status == dt_client.OrchestrationStatus.COMPLETED

    sdk.stop()
    _until(lambda: not sidecar.ready, "the sidecar to say it is not ready", seconds=10)
    assert _health(address) == "NOT_SERVING"  # at once, not after the standby delay
    # Given back once no worker reconnected within the standby delay.
    left = time.monotonic()
    _until(
        lambda: _leased(settings) == [],
        "the leases to be released after the last worker left",
        seconds=STANDBY_DELAY_SECONDS + 30,
    )
    print(f"leases released {time.monotonic() - left:.2f} s after the last worker left")
    assert worker.owned_partitions == []


def test_a_sidecar_stopped_with_a_worker_connected_releases_its_partitions(settings: TaskHubSettings) -> None:
    with Sidecar(settings, port=0, options=FAST) as sidecar:
        sdk = sdk_apps.register(dt_worker.TaskHubGrpcWorker(host_address=f"127.0.0.1:{sidecar.port}"))
        sdk.start()
        try:
            _until(lambda: sidecar.ready, "the sidecar to be ready")
            assert len(_leased(settings)) == settings.partition_count
            sidecar.stop()  # the SDK worker is still connected
            assert _leased(settings) == [], "a stop must release the leases, not leave them to expire"
        finally:
            sdk.stop()


def test_a_worker_reconnecting_at_once_keeps_the_partitions(
    sidecar: Sidecar, sdk_worker: SdkWorkerFactory, settings: TaskHubSettings
) -> None:
    """The last stream ending for a moment (an SDK worker restarting, a network blip) does not
    give everything back and cancel the work in flight: standby waits for a reconnect first."""
    worker = sidecar.worker
    assert worker is not None
    first = sdk_apps.register(sdk_worker())
    first.start()
    _until(lambda: sidecar.ready, "the sidecar to be ready")
    fewest = [settings.partition_count]
    watching = threading.Event()

    def watch() -> None:  # the fewest partitions owned while the worker is replaced
        while not watching.wait(0.005):
            fewest[0] = min(fewest[0], len(worker.owned_partitions))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        first.stop()
        _until(lambda: sidecar.workers_connected == 0, "the first SDK worker's stream to end")
        time.sleep(0.5)  # longer than a release takes without the wait (0.05 s)
        second = sdk_apps.register(sdk_worker())
        second.start()
        _until(lambda: sidecar.workers_connected > 0, "the second SDK worker to connect")
        time.sleep(0.5)
    finally:
        watching.set()
        watcher.join()
    assert fewest[0] == settings.partition_count, f"partitions given back meanwhile: {fewest[0]} left"
    _until(lambda: sidecar.ready, "the sidecar to be ready again", seconds=10)


def test_a_hub_that_fails_to_start_leaves_the_port_free(settings: TaskHubSettings) -> None:
    """An embedded sidecar whose start fails after binding its port lets go of the port."""
    second = settings.model_copy(update={"task_hub": new_hub_name(), "partition_count": 2})
    with TaskHub(second) as hub:
        hub.create()  # 2 partitions: the sidecar, configured for 4, refuses to open it
    port = free_port()
    sidecar = Sidecar(settings, port=port, options=FAST, task_hubs=[second.task_hub])
    with pytest.raises(ConfigurationError, match="partition"):
        sidecar.start()
    gc.collect()  # a server object left behind must hold the port by reference, not by chance
    with socket.create_server(("127.0.0.1", port)):  # OSError (address in use) while held
        pass
