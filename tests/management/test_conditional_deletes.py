"""Purge and clean_entity_storage check an instance, then delete it: whatever happens to it in
between (a restart, a new signal) must not be deleted with it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.azurite
Status = dh.OrchestrationStatus


def is_delete(method: str, url: str) -> bool:
    return method == "DELETE" or url.split("?")[0].endswith("$batch")


class BeforeFirst(HTTPPolicy):  # type: ignore[type-arg]
    """Runs ``meanwhile`` once, just before the first request that ``matches`` (by default:
    the first that deletes something)."""

    def __init__(
        self, meanwhile: Callable[[], None], done: list[bool], matches: Callable[[str, str], bool]
    ) -> None:
        super().__init__()
        self._meanwhile = meanwhile
        self._done = done
        self._matches = matches

    def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        http = request.http_request
        if self._matches(http.method, http.url) and not self._done:
            self._done.append(True)
            self._meanwhile()
        return self.next.send(request)


@pytest.fixture
def racing_client(
    mgmt_settings: dh.TaskHubSettings, worker: dh.Worker
) -> Iterator[Callable[..., DurableClient]]:
    """A client whose first delete waits for ``meanwhile`` to happen first."""
    opened: list[TaskHub] = []

    def make(meanwhile: Callable[[], None], matches: Callable[[str, str], bool] = is_delete) -> DurableClient:
        done: list[bool] = []
        hub = TaskHub(mgmt_settings, policies=[lambda _service: BeforeFirst(meanwhile, done, matches)])
        opened.append(hub)
        return DurableClient(mgmt_settings, hub=hub)

    yield make
    for hub in opened:
        hub.close()


def test_an_instance_restarted_while_it_is_purged_is_not_deleted(
    client: DurableClient, racing_client: Callable[..., DurableClient]
) -> None:
    iid = f"restarted-{uuid.uuid4().hex[:6]}"
    client.schedule_new_orchestration("echo_input", input="first", instance_id=iid)
    assert client.wait_for_orchestration_completion(iid, timeout=30).get_output() == "first"

    def restart() -> None:
        client.schedule_new_orchestration("waits_for_event", input="Go", instance_id=iid)
        client.wait_for_orchestration_start(iid, timeout=30)
        wait_until(lambda: len(client.get_orchestration_history(iid)) >= 3, 30, "its first episode")

    result = racing_client(restart).purge_orchestration(iid)
    assert result == dh.PurgeResult(0, is_complete=False)
    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is Status.RUNNING, "the restarted instance was purged"
    client.raise_orchestration_event(iid, "Go", data=1)
    done = client.wait_for_orchestration_completion(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED and done.get_output() == {"got": 1}
    assert client.purge_orchestration(iid) == dh.PurgeResult(1)


def test_an_instance_restarted_before_its_history_is_read_keeps_its_history(
    client: DurableClient, racing_client: Callable[..., DurableClient], mgmt_settings: dh.TaskHubSettings
) -> None:
    """The purge found the instance finished; it restarts before the purge lists its history:
    the new execution's history is not the one that was found finished, and stays."""
    iid = f"restarted-{uuid.uuid4().hex[:6]}"
    client.schedule_new_orchestration("echo_input", input="first", instance_id=iid)
    assert client.wait_for_orchestration_completion(iid, timeout=30).get_output() == "first"

    def restart() -> None:
        client.schedule_new_orchestration("waits_for_event", input="Go", instance_id=iid)
        client.wait_for_orchestration_start(iid, timeout=30)
        wait_until(lambda: len(client.get_orchestration_history(iid)) >= 3, 30, "its first episode")

    history = mgmt_settings.names.history_table

    def reads_history(method: str, url: str) -> bool:
        return method == "GET" and f"/{history}(" in url.split("?")[0] + "("

    result = racing_client(restart, reads_history).purge_orchestration(iid)
    assert result == dh.PurgeResult(0, is_complete=False)
    assert len(client.get_orchestration_history(iid)) >= 3, "the restarted instance's history was purged"
    client.raise_orchestration_event(iid, "Go", data=1)
    done = client.wait_for_orchestration_completion(iid, timeout=30)
    assert done.runtime_status is Status.COMPLETED and done.get_output() == {"got": 1}


def _state(client: DurableClient, entity: dh.EntityInstanceId) -> Any:
    found = client.get_entity(entity)
    return None if found is None else found.get_state()


def test_an_entity_signalled_while_storage_is_cleaned_is_not_deleted(
    client: DurableClient, racing_client: Callable[..., DurableClient]
) -> None:
    entity = dh.EntityInstanceId("box", uuid.uuid4().hex[:8])
    client.signal_entity(entity, "put", "old")
    wait_until(lambda: _state(client, entity) == "old", 30, "the box to hold a value")
    client.signal_entity(entity, "clear")
    wait_until(lambda: client.get_entity(entity) is None, 30, "the box to be empty")

    def refill() -> None:
        client.signal_entity(entity, "put", "new")
        wait_until(lambda: _state(client, entity) == "new", 30, "the box to be refilled")

    racing_client(refill).clean_entity_storage(release_orphaned_locks=False)
    time.sleep(1)  # a worker's batch in flight would have shown by now
    assert _state(client, entity) == "new", "the refilled entity was deleted as empty"
    client.signal_entity(entity, "put", "newer")  # and it goes on working
    wait_until(lambda: _state(client, entity) == "newer", 30, "the box to take another value")
