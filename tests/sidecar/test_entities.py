"""Entities written for the durabletask SDK on the sidecar: signals, calls, critical sections,
failures, and the client's entity RPCs (stored as durablehub stores entities)."""

from __future__ import annotations

import threading

import pytest
from durabletask import client as dt_client
from durabletask import entities, task

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from tests.sidecar.conftest import SdkWorkerFactory


def counter(ctx: entities.EntityContext, input: int | None):
    if ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + (input or 0))
    elif ctx.operation == "fail":
        raise ValueError("no such luck")
    elif ctx.operation == "delete":
        ctx.set_state(None)
    return ctx.get_state(int, 0)


def transfer(ctx: task.OrchestrationContext, amount: int):
    a, b = entities.EntityInstanceId("counter", "a"), entities.EntityInstanceId("counter", "b")
    with (yield ctx.lock_entities([a, b])):
        yield ctx.call_entity(a, "add", -amount)
        total = yield ctx.call_entity(b, "add", amount)
    try:
        yield ctx.call_entity(a, "fail")
    except task.TaskFailedError as exc:
        return {"b": total, "failure": exc.details.message}
    return {"b": total, "failure": None}


@pytest.fixture
def worker(sdk_worker: SdkWorkerFactory):
    w = sdk_worker()
    w.add_entity(counter)
    w.add_orchestrator(transfer)
    w.start()
    return w


def _until(condition, what: str) -> None:
    pause = threading.Event()
    for _ in range(1200):
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_signals_and_get_entity(
    worker: object, sdk_client: dt_client.TaskHubGrpcClient, settings: TaskHubSettings
) -> None:
    cid = entities.EntityInstanceId("counter", "c1")
    for n in (1, 2, 3):
        sdk_client.signal_entity(cid, "add", n)

    def total() -> int | None:
        meta = sdk_client.get_entity(cid)
        return None if meta is None else meta.get_state(int)

    _until(lambda: total() == 6, "the signals to apply")
    assert sdk_client.get_entity(entities.EntityInstanceId("counter", "nobody")) is None
    with DurableClient(settings) as client:  # stored as durablehub stores entities
        entity = client.get_entity("@counter@c1")
        assert entity is not None and entity.get_state() == 6
    found = sdk_client.get_all_entities(
        dt_client.EntityQuery(instance_id_starts_with="@counter@", include_state=True)
    )
    assert [str(e.id) for e in found] == ["@counter@c1"]


def test_calls_locks_and_failures_from_an_orchestration(
    worker: object, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    iid = sdk_client.schedule_new_orchestration(transfer, input=5)
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.COMPLETED, state
    output = state.serialized_output or ""
    assert '"b": 5' in output and "no such luck" in output
    a = sdk_client.get_entity(entities.EntityInstanceId("counter", "a"))
    assert a is not None and a.get_state(int) == -5 and a.get_locked_by() is None
