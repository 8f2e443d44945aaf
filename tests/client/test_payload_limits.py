"""Payload sizes are bounded where they enter: the clients refuse a payload over
``max_payload_bytes`` with ``PayloadTooLargeError`` before anything is written (issue 10, item 9)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.errors import ConfigurationError, PayloadError
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.client.simulate import counts

pytestmark = pytest.mark.azurite
LIMIT = 1024


@pytest.fixture
def small(settings: TaskHubSettings) -> TaskHubSettings:
    return settings.model_copy(update={"max_payload_bytes": LIMIT})


@pytest.fixture
def client(small: TaskHubSettings, hub: TaskHub) -> Iterator[DurableClient]:
    with DurableClient(small, hub=None) as durable_client:
        yield durable_client


def test_the_error_is_public_and_a_payload_error() -> None:
    assert issubclass(dh.PayloadTooLargeError, PayloadError)
    assert "PayloadTooLargeError" in dh.__all__


def test_payloads_over_the_limit_are_refused_before_anything_is_written(
    client: DurableClient, small: TaskHubSettings
) -> None:
    at_limit = "é" * ((LIMIT - 2) // 2)  # 2 bytes each in UTF-8, plus the quotes: exactly LIMIT
    iid = client.schedule_new_orchestration("Echo", input=at_limit, instance_id="fits")
    before = counts(small)
    over = at_limit + "x"

    with pytest.raises(dh.PayloadTooLargeError) as caught:
        client.schedule_new_orchestration("Echo", input=over, instance_id="too-big")
    assert str(caught.value) == (
        "input of orchestration 'Echo' is 1,025 bytes of JSON, more than max_payload_bytes=1,024 "
        "(DURABLEHUB_MAX_PAYLOAD_BYTES): keep large data elsewhere (a blob) and pass a reference"
    )
    assert (caught.value.size, caught.value.limit) == (1025, LIMIT)
    with pytest.raises(dh.PayloadTooLargeError, match=r"^data of event 'go' is 1,025 bytes"):
        client.raise_orchestration_event(iid, "go", data=over)
    with pytest.raises(dh.PayloadTooLargeError, match=r"^output \(reason\) of terminate_orchestration is"):
        client.terminate_orchestration(iid, output=over)
    with pytest.raises(dh.PayloadTooLargeError, match=r"^input of operation 'add' on @counter@c is"):
        client.signal_entity("@counter@c", "add", over)
    with pytest.raises(dh.PayloadTooLargeError, match=r"^reason of suspend_orchestration is"):
        client.suspend_orchestration(iid, reason="r" * (LIMIT + 1))

    assert counts(small) == before  # nothing was sent
    assert client.get_orchestration_state("too-big") is None


def test_the_limit_comes_from_the_environment_and_must_leave_room_to_read_it_back(
    small: TaskHubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLEHUB_MAX_PAYLOAD_BYTES", "2048")
    monkeypatch.setenv("DURABLEHUB_MAX_DECOMPRESSED_BYTES", "2000000")
    read = TaskHubSettings(task_hub="LimitsHub", connection_string="UseDevelopmentStorage=true")
    assert (read.max_payload_bytes, read.max_decompressed_bytes) == (2048, 2_000_000)
    defaults = small.model_copy(update={"max_payload_bytes": 16 * 1024 * 1024})
    assert TaskHubSettings.model_fields["max_payload_bytes"].default == defaults.max_payload_bytes
    with pytest.raises(ConfigurationError, match="max_decompressed_bytes"):
        TaskHubSettings(
            task_hub="LimitsHub",
            connection_string="UseDevelopmentStorage=true",
            max_payload_bytes=10_000_000,
            max_decompressed_bytes=10_000_000,
        )
