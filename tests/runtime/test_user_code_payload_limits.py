"""max_payload_bytes holds for payloads that user code makes, not only for the clients' ones:
an orchestrator's activity input or output, an entity's state. Beyond it a payload would
become a message or row that a worker may refuse to read back (max_decompressed_bytes) and
poison; refused where it is made, the error reaches the code that made it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings

pytestmark = pytest.mark.azurite
LIMIT = 50_000  # over 45 KiB: a payload beyond it would travel as a blob
TOO_BIG = LIMIT + 10_000

app = dh.App()


@app.activity
def length(ctx: dh.ActivityContext, text: str) -> int:
    return len(text)


@app.entity
def box(ctx: dh.EntityContext, size: int) -> Any:
    if ctx.operation == "fill":
        ctx.set_state("x" * size)
    return len(ctx.get_state(str, ""))


@app.orchestrator
def sends(ctx: dh.OrchestrationContext, size: int):
    try:
        sent = yield ctx.call_activity(length, input="x" * size)
    except dh.PayloadTooLargeError as exc:
        sent = str(exc)
    try:
        filled = yield ctx.call_entity(dh.EntityInstanceId("box", ctx.instance_id), "fill", size)
    except dh.TaskFailedError as exc:
        filled = exc.details.error_type
    return {"sent": sent, "filled": filled}


@app.orchestrator
def returns(ctx: dh.OrchestrationContext, size: int) -> str:
    return "x" * size


@pytest.fixture
def limited(settings: TaskHubSettings) -> Iterator[TaskHubSettings]:
    limited = settings.model_copy(update={"max_payload_bytes": LIMIT})
    with dh.Worker(app, limited):
        yield limited


def test_an_orchestrators_payloads_over_the_limit_fail_where_they_are_made(
    client: DurableClient, limited: TaskHubSettings
) -> None:
    iid = client.schedule_new_orchestration(sends, input=TOO_BIG)
    output = client.wait_for_orchestration_completion(iid, timeout=60).get_output()
    assert "input of activity 'length'" in output["sent"] and "max_payload_bytes=50,000" in output["sent"]
    assert output["filled"] == "durablehub.errors.PayloadTooLargeError"
    assert client.get_entity(dh.EntityInstanceId("box", iid)) is None  # the failed operation set nothing

    small = client.schedule_new_orchestration(sends, input=100)
    assert client.wait_for_orchestration_completion(small, timeout=60).get_output() == {
        "sent": 100,
        "filled": 100,
    }

    big = client.schedule_new_orchestration(returns, input=TOO_BIG)
    state = client.wait_for_orchestration_completion(big, timeout=60)
    assert state.runtime_status is dh.OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "durablehub.errors.PayloadTooLargeError"
    assert "output of orchestrator 'returns'" in state.failure_details.message
