"""A client per test, on the fresh hub of tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.hub import TaskHub


@pytest.fixture
def client(settings: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(settings, hub=hub) as durable_client:
        yield durable_client


@pytest.fixture
async def aclient(settings: TaskHubSettings, async_hub: AsyncTaskHub) -> AsyncIterator[AsyncDurableClient]:
    async with AsyncDurableClient(settings, hub=async_hub) as durable_client:
        yield durable_client
