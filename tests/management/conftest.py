"""One hub and one in-process worker for the whole module: management tests need a live worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from tests.conftest import StorageEmulator, new_hub_name
from tests.management.apps import app


@pytest.fixture(scope="module")
def mgmt_settings(azurite: StorageEmulator) -> Iterator[dh.TaskHubSettings]:
    settings = dh.TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, partition_count=2
    )
    with TaskHub(settings) as hub:
        hub.create()
        yield settings
        hub.delete()


@pytest.fixture(scope="module")
def worker(mgmt_settings: dh.TaskHubSettings) -> Iterator[dh.Worker]:
    with dh.Worker(app, mgmt_settings) as running:
        yield running


@pytest.fixture
def client(mgmt_settings: dh.TaskHubSettings, worker: dh.Worker) -> Iterator[DurableClient]:
    with DurableClient(mgmt_settings) as durable_client:
        yield durable_client
