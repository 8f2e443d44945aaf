"""The dashboard's hub page on a half-made hub (issue 22 §1): ``taskhub.json`` without its
queues and lease blobs, as a worker still making the hub leaves it, or a whole hub whose control
queue was deleted. The page and its health part answer 200 and mark what is missing, as
``durablehub hub info`` does, instead of a 500 with a storage error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.http import HttpSettings, create_app
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.client.test_half_made_hub import delete_hub, only_taskhub_json
from tests.dashboard.conftest import sign_in
from tests.e2e.apps import app as e2e_app
from tests.http.conftest import KEY

pytestmark = pytest.mark.azurite
HEALTH = {"x-dashboard-fragment": "health"}


@pytest.fixture
def half_made(settings: TaskHubSettings) -> Iterator[TaskHubSettings]:
    only_taskhub_json(settings)
    yield settings
    delete_hub(settings)


@pytest.fixture
async def signed_in(settings: TaskHubSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The management app as ``durablehub serve`` builds it; an unhandled error is answered
    500 as a server would, not raised into the test."""
    async with AsyncDurableClient(settings) as durable:
        app = create_app(
            http_settings=HttpSettings(key=KEY, allowed_hosts=["testserver"]),
            client=durable,
            worker_app=e2e_app,
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await sign_in(client)).status_code == 303
            yield client


def queue_row(page: str, queue: str) -> str:
    row = re.search(rf'<tr data-queue="{queue}"[^>]*>(.*?)</tr>', page, re.S)
    assert row is not None, f"no row for {queue}"
    return row.group(1)


async def pages(client: httpx.AsyncClient) -> list[httpx.Response]:
    return [await client.get("/dashboard/hub"), await client.get("/dashboard/hub", headers=HEALTH)]


async def test_hub_page_with_only_taskhub_json(
    half_made: TaskHubSettings, signed_in: httpx.AsyncClient
) -> None:
    names = half_made.names
    for page in await pages(signed_in):
        assert page.status_code == 200, page.text[:300]
        for queue in [*names.control_queues, names.work_item_queue]:
            assert "missing" in queue_row(page.text, queue)
        line = re.search(r'<p[^>]*id="missing"[^>]*>(.*?)</p>', page.text, re.S)
        assert line is not None and "Not made yet" in line.group(1)
        for name in [*names.control_queues, names.work_item_queue]:
            assert name in line.group(1)
        assert names.lease_blob(names.control_queues[0]) in line.group(1)  # no lease blobs yet
        assert page.text.count("missing: no lease blob yet") == names.partition_count
    assert "Empty: no message has been set aside." in (await signed_in.get("/dashboard/hub")).text


async def test_hub_page_with_a_deleted_control_queue(hub: TaskHub, signed_in: httpx.AsyncClient) -> None:
    gone, kept = hub.control_queues[1], hub.control_queues[0]
    gone.delete()
    for page in await pages(signed_in):
        assert page.status_code == 200, page.text[:300]
        assert "missing" in queue_row(page.text, gone.name)
        assert "missing" not in queue_row(page.text, kept.name)
        line = re.search(r'<p[^>]*id="missing"[^>]*>(.*?)</p>', page.text, re.S)
        assert line is not None and gone.name in line.group(1) and kept.name not in line.group(1)
        assert page.text.count("<td>free</td>") == hub.names.partition_count  # the leases still show
