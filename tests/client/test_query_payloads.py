"""A query page that fetches inputs and outputs cannot pull thousands of blobs into memory at
once (issue 10, item 9): its blobs are downloaded a few at a time, and a page ends early, with a
continuation token, once its payloads reach ``max_decompressed_bytes`` (at least one instance
per page, so paging always moves on)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.state import OrchestrationQuery
from durablehub.taskhub.hub import TaskHub

pytestmark = pytest.mark.azurite
MiB = 1024 * 1024


class InFlight(HTTPPolicy):  # type: ignore[type-arg]
    """Counts blob downloads running at once (the sync client runs them on threads)."""

    current = 0
    most = 0
    total = 0

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        counted = self.service == "blob" and request.http_request.method == "GET"
        if counted:
            cls = type(self)
            cls.current += 1
            cls.total += 1
            cls.most = max(cls.most, cls.current)
        try:
            return self.next.send(request)
        finally:
            if counted:
                type(self).current -= 1


@pytest.fixture
def capped(settings: TaskHubSettings) -> TaskHubSettings:
    return TaskHubSettings(
        task_hub=settings.task_hub,
        connection_string=settings.connection_string,
        partition_count=settings.partition_count,
        max_payload_bytes=400 * 1024,
        max_decompressed_bytes=MiB,
    )


@pytest.fixture
def client(capped: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(capped, hub=hub) as durable_client:
        yield durable_client


def test_pages_with_payloads_are_bounded_in_bytes_and_still_return_everything(
    client: DurableClient, capped: TaskHubSettings, hub: TaskHub
) -> None:
    inputs = {f"big-{n:02d}": {"n": n, "data": "d" * 300_000} for n in range(24)}
    for iid, value in inputs.items():  # each start message, and so each Input, is a blob
        client.schedule_new_orchestration("Big", input=value, instance_id=iid)

    with TaskHub(capped, policies=[InFlight]) as counted, DurableClient(capped, hub=counted) as reader:
        query = OrchestrationQuery(page_size=100, fetch_inputs_and_outputs=True)
        pages = []
        while True:
            page = reader.query_orchestrations(query)
            pages.append(page.items)
            if page.continuation_token is None:
                break
            query = OrchestrationQuery(
                page_size=100, fetch_inputs_and_outputs=True, continuation_token=page.continuation_token
            )

    found = [state for page in pages for state in page]
    assert [s.instance_id for s in found] == sorted(inputs)  # each once, in order
    assert all(s.get_input() == inputs[s.instance_id] for s in found)
    # 300 KB each against a 1 MiB page budget: three or four instances a page, never all 24.
    assert all(1 <= len(page) <= 4 for page in pages), [len(p) for p in pages]
    assert all(sum(len(s.serialized_input or "") for s in page[1:]) <= MiB for page in pages)
    assert 1 < InFlight.most <= 8  # downloads run side by side, a few at a time
    # A row cut off by the budget (at most the 7 downloads beside the page's own) is read again next page.
    assert InFlight.total <= len(inputs) + 7 * len(pages), InFlight.total
    assert json.loads(found[0].serialized_input or "null") == inputs["big-00"]
