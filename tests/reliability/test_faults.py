"""Storage faults: an in-process worker under injected 500/503/409/412/404 and timeouts.

The worker's storage clients carry ``durablehub.testing.faults`` (seeded, per-request rate);
the client that starts instances and raises events does not. With ``retry_total=0`` every
fault reaches durablehub's code; one run keeps the SDK's retries on (then a timeout after a
send makes the SDK send again: duplicates). Every instance must finish with its known output,
and its history must be whole: one row per sequence number, a complete sentinel, no action or
response recorded twice, the Instances row agreeing with the history.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import CheckpointConflictError
from durablehub.taskhub import envelope
from durablehub.taskhub.hub import TaskHub
from durablehub.testing.faults import Fault, FaultInjector
from tests.conftest import StorageEmulator, new_hub_name

pytestmark = pytest.mark.azurite

app = dh.App()


@app.activity
def double(ctx: dh.ActivityContext, value: int) -> int:
    return 2 * value


@app.orchestrator
def chain(ctx: dh.OrchestrationContext, steps: int):
    total = 1
    for _ in range(steps):
        total = yield ctx.call_activity(double, input=total)
    return total


@app.orchestrator
def fan_out(ctx: dh.OrchestrationContext, width: int):
    results = yield dh.when_all([ctx.call_activity(double, input=i) for i in range(width)])
    return sum(results)


@app.orchestrator
def nap(ctx: dh.OrchestrationContext, seconds: int):
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (yield ctx.call_activity(double, input=seconds))


@app.orchestrator
def waiter(ctx: dh.OrchestrationContext, _: Any):
    approved = yield ctx.wait_for_external_event("Approval")
    return {"approved": approved}


@app.orchestrator
def parent(ctx: dh.OrchestrationContext, steps: int):
    child = yield ctx.call_sub_orchestrator(chain, input=steps, instance_id=f"{ctx.instance_id}-child")
    return child + (yield ctx.call_activity(double, input=child))


@app.entity
def counter(ctx: dh.EntityContext, amount: int) -> int:
    if ctx.operation == "add":
        ctx.set_state(ctx.get_state(int, 0) + amount)
    return ctx.get_state(int, 0)


@app.orchestrator
def counts(ctx: dh.OrchestrationContext, key: str):
    entity = dh.EntityInstanceId("counter", key)
    yield ctx.call_entity(entity, "add", 5)
    return (yield ctx.call_entity(entity, "add", 7))


# (orchestrator, input, expected output) per instance; the waiters get their event raised.
WORKLOAD: list[tuple[str, Any, Any]] = [
    *[("chain", 5, 32)] * 3,
    *[("fan_out", 12, 2 * sum(range(12)))] * 2,
    *[("nap", 2, 4)] * 2,
    *[("waiter", None, {"approved": True})] * 2,
    *[("parent", 3, 24)] * 2,
    ("counts", "k", 12),
]


def _fast_options() -> dh.WorkerOptions:
    # Short visibilities: a message whose receive answer was lost comes back in seconds.
    return dh.WorkerOptions(control_visibility_seconds=6, activity_visibility_seconds=6)


def _check_history(hub: TaskHub, instance_id: str, expected_status: dh.OrchestrationStatus) -> list[str]:
    """Everything wrong with one instance's stored history and row (empty: all consistent)."""
    problems: list[str] = []
    raw = hub.history.list_rows(instance_id)
    sentinel = [r for r in raw if r["RowKey"] == "sentinel"]
    keys = sorted(int(r["RowKey"], 16) for r in raw if r["RowKey"] != "sentinel")
    if keys != list(range(len(keys))):
        problems.append(f"row keys not contiguous: {keys}")
    if len(sentinel) != 1 or not sentinel[0].get("IsCheckpointComplete", True):
        problems.append(f"sentinel missing or incomplete: {sentinel}")
    events = list(hub.history.load(instance_id).events)
    kinds = Counter(type(e).__name__ for e in events)
    if kinds["ExecutionStarted"] != 1 or kinds["ExecutionCompleted"] != 1:
        problems.append(f"starts/completions: {dict(kinds)}")
    scheduled = Counter(e.event_id for e in events if isinstance(e, ev.TaskScheduled | ev.TimerCreated))
    scheduled.update(e.event_id for e in events if isinstance(e, ev.SubOrchestrationInstanceCreated))
    if dupes := [i for i, n in scheduled.items() if n > 1]:
        problems.append(f"actions recorded twice: {dupes}")
    answers = Counter(
        e.timer_id if isinstance(e, ev.TimerFired) else e.task_scheduled_id  # type: ignore[attr-defined]
        for e in events
        if isinstance(
            e, ev.TaskCompleted | ev.TaskFailed | ev.TimerFired | ev.SubOrchestrationInstanceCompleted
        )
    )
    if dupes := [i for i, n in answers.items() if n > 1]:
        problems.append(f"responses recorded twice: {dupes}")
    if orphans := [i for i in answers if i not in scheduled]:
        problems.append(f"responses without their scheduling event: {orphans}")
    row = hub.instances.get(instance_id)
    completed = next((e for e in events if isinstance(e, ev.ExecutionCompleted)), None)
    if row is None or completed is None:
        problems.append("no Instances row or no completion")
    else:
        if row["RuntimeStatus"] != expected_status.table_name:
            problems.append(f"row status {row['RuntimeStatus']}, expected {expected_status.table_name}")
        if row.get("Output") != completed.result:
            problems.append(f"row output {row.get('Output')!r}, history {completed.result!r}")
    return problems


def _run_workload(azurite: StorageEmulator, injector: FaultInjector, *, sdk_retries: bool) -> None:
    hub_name = new_hub_name()
    clean = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    faulty = dh.TaskHubSettings(
        task_hub=hub_name, connection_string=azurite.connection_string, retry_total=3 if sdk_retries else 0
    )
    ids: dict[str, tuple[str, Any]] = {}
    with TaskHub(clean) as hub, DurableClient(clean, hub=hub) as client:
        hub.create()
        injector.active = False  # the worker starts and creates its hub; then faults begin
        with dh.Worker(app, faulty, options=_fast_options(), storage_policies=[injector.async_policy]):
            injector.active = True
            for n, (name, value, expected) in enumerate(WORKLOAD):
                iid = client.schedule_new_orchestration(name, input=value, instance_id=f"{name}-{n}")
                ids[iid] = (name, expected)
            for iid, (name, _) in ids.items():
                if name == "waiter":
                    client.wait_for_orchestration_start(iid, timeout=60)
                    client.raise_orchestration_event(iid, "Approval", data=True)
            states = {iid: client.wait_for_orchestration_completion(iid, timeout=120) for iid in ids}
            injector.active = False
        print(f"\n{injector.summary()}\n  by operation: {injector.by_operation()}")
        wrong = {
            iid: (s.runtime_status, s.get_output(), s.failure_details)
            for iid, s in states.items()
            if s.runtime_status is not dh.OrchestrationStatus.COMPLETED or s.get_output() != ids[iid][1]
        }
        assert not wrong, f"instances with a wrong outcome: {wrong}"
        children = [f"{iid}-child" for iid, (name, _) in ids.items() if name == "parent"]
        problems = {
            iid: p
            for iid in [*ids, *children]
            if (p := _check_history(hub, iid, dh.OrchestrationStatus.COMPLETED))
        }
        assert not problems, f"inconsistent histories: {problems}"
        entity = client.get_entity(dh.EntityInstanceId("counter", "k"))
        assert entity is not None and entity.get_state() == 12, "an entity operation ran twice or not at all"
        hub.delete()


@pytest.mark.parametrize("rate", [0.02, 0.05, 0.10])
def test_every_instance_completes_correctly_under_storage_faults(
    azurite: StorageEmulator, rate: float
) -> None:
    injector = FaultInjector(rate, seed=int(rate * 1000))
    _run_workload(azurite, injector, sdk_retries=False)
    assert injector.total > 0


def test_with_sdk_retries_on_lost_answers_are_retried_into_duplicates(azurite: StorageEmulator) -> None:
    injector = FaultInjector(0.10, seed=11)
    _run_workload(azurite, injector, sdk_retries=True)
    assert injector.counts.get(Fault.TIMEOUT_AFTER_SEND, 0) > 0


def test_each_fault_kind_surfaces_as_the_service_would_answer(azurite: StorageEmulator) -> None:
    """The injected answers go through the SDKs' own error mapping, and a timeout after the
    send leaves the request done: the message is in the queue although the client got an error."""
    settings = dh.TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, retry_total=0
    )
    with TaskHub(settings) as hub:
        hub.create()
        start = ev.ExecutionStarted(
            orchestration_instance=ev.OrchestrationInstance(instance_id="x", execution_id="e"), name="chain"
        )
        message = envelope.MessageData(
            task_message=envelope.TaskMessage(
                event=start, orchestration_instance=start.orchestration_instance
            )
        )
        for fault in (Fault.SERVER_ERROR, Fault.SERVER_BUSY):
            with TaskHub(settings, policies=[FaultInjector(1.0, faults=[fault]).policy]) as faulty:
                with pytest.raises(HttpResponseError) as raised:
                    faulty.instances.get("x")
                assert raised.value.status_code == int(fault)
        for fault in (Fault.CONFLICT, Fault.PRECONDITION_FAILED):
            with TaskHub(settings, policies=[FaultInjector(1.0, faults=[fault]).policy]) as faulty:
                with pytest.raises(CheckpointConflictError):
                    faulty.history.commit("x", "e", [start], first_sequence_number=0, sentinel_etag=None)
                assert faulty.instances.get("x") is None  # nothing plausible to fail: no fault
        assert hub.history.list_rows("x") == []  # the failed commits wrote nothing
        queue = hub.control_queues[0]
        with TaskHub(settings, policies=[FaultInjector(1.0, faults=[Fault.TIMEOUT_BEFORE_SEND]).policy]) as f:
            with pytest.raises(ServiceResponseError):
                f.control_queues[0].send(message)
        assert queue.approximate_count() == 0
        with TaskHub(settings, policies=[FaultInjector(1.0, faults=[Fault.TIMEOUT_AFTER_SEND]).policy]) as f:
            with pytest.raises(ServiceResponseError):
                f.control_queues[0].send(message)
        assert queue.approximate_count() == 1
        (received,) = queue.receive(visibility_timeout=timedelta(seconds=30))
        injector = FaultInjector(1.0, faults=[Fault.NOT_FOUND])
        with TaskHub(settings, policies=[injector.policy]) as faulty:
            assert faulty.control_queues[0].delete_message(received) is False  # a stale pop receipt
        assert injector.counts == {"404": 1}
        assert queue.delete_message(received) is True
        hub.delete()


# One more than the runtime's own attempts (retries.retry_transient): the episode fails.
ROW_WRITE_FAULTS = 4


def _row_writes_fail() -> FaultInjector:
    return FaultInjector(
        1.0, faults=[Fault.SERVER_ERROR], operations=["table.upsert_merge"], limit=ROW_WRITE_FAULTS
    )


def test_a_start_whose_instances_write_failed_is_not_left_pending(azurite: StorageEmulator) -> None:
    """History committed, then the Instances upsert failed: the redelivered start is a duplicate,
    and the worker repairs the row instead of leaving the instance Pending forever (#1252)."""
    hub_name = new_hub_name()
    clean = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    faulty = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, retry_total=0)
    injector = _row_writes_fail()
    with TaskHub(clean) as hub, DurableClient(clean, hub=hub) as client:
        hub.create()
        with dh.Worker(app, faulty, options=_fast_options(), storage_policies=[injector.async_policy]):
            iid = client.schedule_new_orchestration("waiter", instance_id="waiter-row")
            state = client.wait_for_orchestration_start(iid, timeout=30)
            assert state.runtime_status is dh.OrchestrationStatus.RUNNING
            assert injector.counts == {"500": ROW_WRITE_FAULTS}
            client.raise_orchestration_event(iid, "Approval", data=True)
            done = client.wait_for_orchestration_completion(iid, timeout=30)
        assert done.get_output() == {"approved": True}
        hub.delete()


def test_an_entity_whose_instances_write_failed_does_not_go_back_in_time(azurite: StorageEmulator) -> None:
    """The same for an entity: ``get_entity`` reads the Instances row, which must catch up with
    the committed history when the redelivered signal turns out to be a duplicate."""
    hub_name = new_hub_name()
    clean = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    faulty = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, retry_total=0)
    entity = dh.EntityInstanceId("counter", "row")
    with TaskHub(clean) as hub, DurableClient(clean, hub=hub) as client:
        hub.create()
        client.signal_entity(entity, "add", 5)
        client.signal_entity(entity, "add", 7)  # one batch, or two: the state ends at 12 either way
        injector = _row_writes_fail()
        with dh.Worker(app, faulty, options=_fast_options(), storage_policies=[injector.async_policy]):
            deadline = time.monotonic() + 30
            while (found := client.get_entity(entity)) is None or found.get_state() != 12:
                assert time.monotonic() < deadline, f"entity state stuck at {found}"
                time.sleep(0.2)
        assert injector.counts == {"500": ROW_WRITE_FAULTS}
        hub.delete()


def test_a_parent_episode_run_twice_does_not_restart_its_finished_child(azurite: StorageEmulator) -> None:
    """The parent's first history write fails after it sent the child's start; its retry sends
    another start (a new execution id). The child (no activities: finished by then) must not
    run again."""
    hub_name = new_hub_name()
    clean = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    faulty = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, retry_total=0)
    injector = FaultInjector(1.0, faults=[Fault.SERVER_ERROR], operations=["table.batch"], limit=1)
    with TaskHub(clean) as hub, DurableClient(clean, hub=hub) as client:
        hub.create()
        with dh.Worker(app, faulty, options=_fast_options(), storage_policies=[injector.async_policy]):
            iid = client.schedule_new_orchestration("parent", input=0, instance_id="twice")
            assert client.wait_for_orchestration_completion(iid, timeout=30).get_output() == 3
        assert injector.counts == {"500": 1}
        assert _check_history(hub, "twice", dh.OrchestrationStatus.COMPLETED) == []
        assert _check_history(hub, "twice-child", dh.OrchestrationStatus.COMPLETED) == []
        # The child still runs the execution the first attempt started, not one of the retry's.
        (created,) = [
            e for e in hub.history.load("twice").events if isinstance(e, ev.SubOrchestrationInstanceCreated)
        ]
        (child,) = [e for e in hub.history.load("twice-child").events if isinstance(e, ev.ExecutionStarted)]
        assert child.timestamp < created.timestamp
        hub.delete()


@app.orchestrator
def announce_then_fan_in(ctx: dh.OrchestrationContext, width: int):
    """Tell 100 subscribers (signals: no answer comes back), then fan out and in. The first
    episode writes 253 events in three table transactions."""
    for _ in range(100):
        ctx.signal_entity(dh.EntityInstanceId("counter", "subscribers"), "add", 1)
    results = yield dh.when_all([ctx.call_activity(double, input=i) for i in range(width)])
    return sum(results)


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.TIMEOUT_AFTER_SEND])
def test_a_fan_in_of_150_survives_a_fault_between_its_history_transactions(
    azurite: StorageEmulator, fault: Fault
) -> None:
    """The second of the first episode's three history transactions fails (SERVER_ERROR:
    nothing of it was written; TIMEOUT_AFTER_SEND: it was, its answer was lost). A half-written
    episode must not count as history: its redelivered start would be dropped as a duplicate
    and every activity's answer as early (its TaskScheduled was never written), leaving the
    instance Running forever. It must run its episode again and finish with the right result,
    a whole contiguous history, and each signal applied once."""
    hub_name = new_hub_name()
    clean = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string)
    faulty = dh.TaskHubSettings(task_hub=hub_name, connection_string=azurite.connection_string, retry_total=0)
    injector = FaultInjector(1.0, faults=[fault], operations=["table.batch"], skip=1, limit=1)
    with TaskHub(clean) as hub, DurableClient(clean, hub=hub) as client:
        hub.create()
        with dh.Worker(app, faulty, options=_fast_options(), storage_policies=[injector.async_policy]):
            iid = client.schedule_new_orchestration("announce_then_fan_in", input=150, instance_id="torn")
            done = client.wait_for_orchestration_completion(iid, timeout=60)
            assert injector.counts == {str(fault): 1}
            assert done.runtime_status is dh.OrchestrationStatus.COMPLETED, done.failure_details
            assert done.get_output() == 2 * sum(range(150))
            subscribers = dh.EntityInstanceId("counter", "subscribers")
            deadline = time.monotonic() + 30
            while (found := client.get_entity(subscribers)) is None or found.get_state() < 100:
                assert time.monotonic() < deadline, f"signals lost: {found}"
                time.sleep(0.2)
            assert found.get_state() == 100, "a signal was applied twice"
        assert _check_history(hub, "torn", dh.OrchestrationStatus.COMPLETED) == []
        hub.delete()
