"""A worker that meets an orchestration, activity or entity its App does not register, on Azurite
with two in-process workers: one has the code, one does not. By default the instance (or task)
fails, as before; with ``unknown_function_strategy=reject`` (``DURABLEHUB_UNKNOWN_FUNCTION_STRATEGY``)
the work is handed back, nothing written, for a worker that has the code. Either way the
worker says so once per name and hub, not once per message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker

FAST = dh.WorkerOptions(max_poll_interval_seconds=0.2, abandon_delay_seconds=1)
REJECT = dh.WorkerOptions(
    max_poll_interval_seconds=0.2, abandon_delay_seconds=1, unknown_function_strategy="reject"
)

with_code = dh.App()
without_code = dh.App()  # the same hub's other worker, deployed with less


@with_code.orchestrator
def greet(ctx: dh.OrchestrationContext, name: str):
    return (yield ctx.call_activity("shout", input=name))


@with_code.orchestrator
@without_code.orchestrator
def greet_loudly(ctx: dh.OrchestrationContext, name: str):
    return (yield ctx.call_activity("shout", input=name))


@with_code.activity
def shout(ctx: dh.ActivityContext, name: str) -> str:
    return name.upper()


@with_code.entity
def counter(ctx: dh.EntityContext, amount: int) -> int:
    ctx.set_state(ctx.get_state(int, 0) + amount)
    return ctx.get_state(int, 0)


def _until(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def _said(caplog: pytest.LogCaptureFixture, name: str, hub: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and f"{name!r}" in r.getMessage() and f"{hub!r}" in r.getMessage()
    ]


@pytest.fixture
def one_partition(azurite: Any, hub_name: str) -> TaskHubSettings:
    # One partition: every instance lands on the control queue the codeless worker owns.
    return TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, partition_count=1)


def test_by_default_an_unknown_orchestration_fails_and_is_logged_once(
    settings: TaskHubSettings, client: DurableClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="durablehub"), Worker(without_code, settings, options=FAST):
        ids = [client.schedule_new_orchestration("greet", input="x") for _ in range(3)]
        states = [client.wait_for_orchestration_completion(i, timeout=60) for i in ids]
    for state in states:
        assert state.runtime_status is dh.OrchestrationStatus.FAILED
        assert (
            state.failure_details is not None
            and "no orchestrator named 'greet'" in state.failure_details.message
        )
    said = _said(caplog, "greet", settings.task_hub)
    assert len(said) == 1, said
    assert "every worker on a task hub must be able to run every orchestration" in said[0]


def test_reject_hands_an_unknown_orchestration_back_until_a_worker_with_its_code_runs_it(
    one_partition: TaskHubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = one_partition
    with DurableClient(settings) as client:
        with caplog.at_level(logging.DEBUG, logger="durablehub"):
            worker = Worker(without_code, settings, options=REJECT)
            with worker:
                iid = client.schedule_new_orchestration("greet", input="ada")
                gate = worker._orchestrations.versions  # type: ignore[union-attr]

                def rejected_three_times() -> bool:
                    state = client.get_orchestration_state(iid)
                    assert state is not None and state.runtime_status is dh.OrchestrationStatus.PENDING, state
                    return gate._rejected.get(iid, (None, 0))[1] >= 3

                _until(rejected_three_times, "three hand-backs")
                said = _said(caplog, "greet", settings.task_hub)
                assert len(said) == 1, said  # once, not once per hand-back
                assert "handed back" in said[0]
                with TaskHub(settings) as hub:
                    assert hub.history.load(iid).events == ()  # nothing written

                # Both workers on the hub at once: the one with the code gets the instance when
                # the partition moves to it (here: the codeless one stops, as in a rolling deployment).
                with Worker(with_code, settings, options=REJECT):
                    time.sleep(2)
                    state = client.get_orchestration_state(iid)
                    assert state is not None and state.runtime_status is dh.OrchestrationStatus.PENDING
                    worker.stop()
                    done = client.wait_for_orchestration_completion(iid, timeout=60)
        assert done.runtime_status is dh.OrchestrationStatus.COMPLETED, done.failure_details
        assert done.get_output() == "ADA"


def test_reject_hands_an_unknown_activity_back_to_the_shared_queue(
    settings: TaskHubSettings, client: DurableClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="durablehub"):
        with Worker(without_code, settings, options=REJECT):
            iid = client.schedule_new_orchestration("greet_loudly", input="bob")
            _until(lambda: bool(_said(caplog, "shout", settings.task_hub)), "the unknown activity noticed")
            time.sleep(1)  # handed back meanwhile (after 1 s, then 2 s, 4 s, ...: abandon_delay)
            state = client.get_orchestration_state(iid)
            assert state is not None and state.runtime_status is not dh.OrchestrationStatus.FAILED, state
            with Worker(with_code, settings, options=FAST):  # any worker may take a work item
                # Whichever worker receives it next: the codeless one may still win a few times.
                done = client.wait_for_orchestration_completion(iid, timeout=120)
    assert done.runtime_status is dh.OrchestrationStatus.COMPLETED, done.failure_details
    assert done.get_output() == "BOB"
    assert len(_said(caplog, "shout", settings.task_hub)) == 1


def test_reject_holds_the_operations_of_an_unknown_entity(
    one_partition: TaskHubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = one_partition
    entity = dh.EntityInstanceId("counter", "c1")
    with DurableClient(settings) as client:
        with caplog.at_level(logging.DEBUG, logger="durablehub"):
            with Worker(without_code, settings, options=REJECT):
                client.signal_entity(entity, "add", 5)
                client.signal_entity(entity, "add", 2)
                _until(
                    lambda: bool(_said(caplog, "counter", settings.task_hub)), "the unknown entity noticed"
                )
                time.sleep(2)
        assert client.get_entity(entity) is None  # nothing run, nothing dropped
        assert len(_said(caplog, "counter", settings.task_hub)) == 1

        with Worker(with_code, settings, options=REJECT):

            def counted() -> bool:
                found = client.get_entity(entity)
                return found is not None and found.get_state() == 7

            _until(counted, "both signals run by the worker that has the entity")


def test_reject_hands_an_unknown_activity_back_more_times_than_the_poison_limit(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    """Hand-backs count as dequeues: past half the limit the work item is sent again as a fresh
    copy, so however long no worker has the code, it is never taken for a poison message."""
    strict = dh.WorkerOptions(
        max_poll_interval_seconds=0.2,
        abandon_delay_seconds=0,
        max_dequeue_count=2,
        unknown_function_strategy="reject",
    )
    with Worker(without_code, settings, options=strict) as worker:
        iid = client.schedule_new_orchestration("greet_loudly", input="cy")
        runner = worker._activities  # type: ignore[union-attr]

        def handed_back_eight_times() -> bool:
            state = client.get_orchestration_state(iid)
            assert state is not None and state.runtime_status is not dh.OrchestrationStatus.FAILED, (
                state.failure_details if state else None
            )
            return runner is not None and runner.rejected >= 8

        _until(handed_back_eight_times, "eight hand-backs of the unknown activity")
    with TaskHub(settings) as hub:
        assert hub.poison.peek().entries == [], "the unknown activity went to the poison queue"
    with Worker(with_code, settings, options=FAST):
        done = client.wait_for_orchestration_completion(iid, timeout=60)
    assert done.runtime_status is dh.OrchestrationStatus.COMPLETED, done.failure_details
    assert done.get_output() == "CY"
