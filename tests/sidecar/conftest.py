"""A sidecar on a free loopback port for the fresh hub of tests/conftest.py, and the unmodified
durabletask SDK's worker and client connected to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("durabletask")

from durabletask import client as dt_client  # noqa: E402
from durabletask import worker as dt_worker  # noqa: E402

from durablehub.runtime.options import WorkerOptions  # noqa: E402
from durablehub.settings import TaskHubSettings  # noqa: E402
from durablehub.sidecar import Sidecar  # noqa: E402

# Sidecar tests poll less lazily than production: they wait on a chain of remote round trips.
FAST = WorkerOptions(max_poll_interval_seconds=0.25)


@pytest.fixture
def sidecar(settings: TaskHubSettings) -> Iterator[Sidecar]:
    with Sidecar(settings, port=0, options=FAST) as running:
        yield running


@pytest.fixture
def address(sidecar: Sidecar) -> str:
    return f"127.0.0.1:{sidecar.port}"


@pytest.fixture
def sdk_client(address: str) -> Iterator[dt_client.TaskHubGrpcClient]:
    client = dt_client.TaskHubGrpcClient(host_address=address)
    yield client
    client.close()


SdkWorkerFactory = Callable[..., dt_worker.TaskHubGrpcWorker]


@pytest.fixture
def sdk_worker(address: str) -> Iterator[SdkWorkerFactory]:
    """Make a durabletask worker for the sidecar (register, then ``start()``); stopped after."""
    made: list[dt_worker.TaskHubGrpcWorker] = []

    def make(**kwargs: object) -> dt_worker.TaskHubGrpcWorker:
        worker = dt_worker.TaskHubGrpcWorker(host_address=address, **kwargs)  # type: ignore[arg-type]
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()
