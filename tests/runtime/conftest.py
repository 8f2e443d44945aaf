"""In-process workers (``with Worker(...)``) and a client on the fresh hub of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub


@pytest.fixture
def client(settings: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(settings, hub=hub) as durable_client:
        yield durable_client
