"""Fixtures: one private Azurite per test session, a fresh task hub per test.

Azurite runs from the repo's pinned copy on free loopback ports with a temporary data
folder. Set ``DURABLEHUB_TEST_AZURITE=docker`` to use testcontainers' Azurite instead where
a Docker daemon exists; without one that option fails at once with a clear message.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from durablehub.azurite import AzuriteProcess
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.hub import TaskHub


@dataclass(frozen=True)
class StorageEmulator:
    """What tests need to know about the running emulator."""

    connection_string: str
    process: AzuriteProcess | None = None


def _docker_azurite() -> Iterator[StorageEmulator]:
    try:
        from testcontainers.azurite import AzuriteContainer  # type: ignore[import-not-found]
    except ImportError:
        try:
            from testcontainers.community.azurite import AzuriteContainer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise pytest.UsageError(
                "DURABLEHUB_TEST_AZURITE=docker needs testcontainers: pip install -e '.[docker]'"
            ) from exc
    try:
        container = AzuriteContainer()
    except Exception as exc:  # docker.errors.DockerException when no daemon runs
        raise pytest.UsageError(
            f"DURABLEHUB_TEST_AZURITE=docker but no Docker daemon is reachable ({exc}); "
            "unset it to use the pinned Azurite from azurite/"
        ) from exc
    with container:
        yield StorageEmulator(connection_string=container.get_connection_string())


@pytest.fixture(scope="session")
def azurite() -> Iterator[StorageEmulator]:
    if os.environ.get("DURABLEHUB_TEST_AZURITE", "").lower() == "docker":
        yield from _docker_azurite()
        return
    with AzuriteProcess() as process:
        yield StorageEmulator(connection_string=process.connection_string, process=process)


_hub_counter = itertools.count()


def new_hub_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}{next(_hub_counter)}"


@pytest.fixture
def hub_name() -> str:
    return new_hub_name()


@pytest.fixture
def settings(azurite: StorageEmulator, hub_name: str) -> TaskHubSettings:
    return TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, partition_count=4)


@pytest.fixture
def hub(settings: TaskHubSettings) -> Iterator[TaskHub]:
    """A freshly created task hub (sync adapters), deleted afterwards."""
    with TaskHub(settings) as task_hub:
        task_hub.create()
        yield task_hub
        task_hub.delete()


@pytest.fixture
async def async_hub(settings: TaskHubSettings) -> AsyncIterator[AsyncTaskHub]:
    """A freshly created task hub (async adapters), deleted afterwards."""
    async with AsyncTaskHub(settings) as task_hub:
        await task_hub.create()
        yield task_hub
        await task_hub.delete()
