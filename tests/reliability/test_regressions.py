"""Regressions for the reference's known failure classes (taskhub-layout.md §4.5, §6, §8), on Azurite.

Each test names its failure class and, where the reference has one, the issue number. The
crash between the History and Instances writes is in test_instances_row.py, poison messages have
their own tests, purge by prefix is in tests/management.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobClient, BlobLeaseClient
from azure.storage.queue import QueueClient

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.errors import OrchestrationAlreadyExistsError
from durablehub.runtime import checkpoint, orchestrations
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.history_table import AsyncHistoryTable
from durablehub.taskhub.aio.queues import MAX_VISIBILITY_DELAY, AsyncTaskHubQueue, SentMessage
from durablehub.taskhub.hub import TaskHub
from tests.conftest import StorageEmulator, new_hub_name

pytestmark = pytest.mark.azurite

DAY = timedelta(days=1)
# Short visibilities: a frozen worker's messages come back within seconds, not minutes.
FAST = WorkerOptions(
    control_visibility_seconds=5,
    activity_visibility_seconds=5,
    balance_interval_seconds=0.5,
    abandon_delay_seconds=0,
)

app = dh.App()
ran: dict[str, int] = {}  # activity input -> runs, across workers of this process
gate = threading.Event()  # holds the `gated` activity until a test opens it


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.activity
def counted(ctx: dh.ActivityContext, key: str) -> str:
    ran[key] = ran.get(key, 0) + 1
    return key


@app.activity
def gated(ctx: dh.ActivityContext, value: str) -> str:
    gate.wait(30)
    return f"real {value}"


@app.orchestrator
def sleep_days(ctx: dh.OrchestrationContext, days: float):
    yield ctx.create_timer(timedelta(days=days))
    return ctx.current_utc_datetime.isoformat()


@app.orchestrator
def event_counter(ctx: dh.OrchestrationContext, state: dict[str, int]):
    """One "add" per generation, each generation racing a short timer of its own: a timer of an
    earlier generation delivered to this one would win the race before its fire time."""
    fire_at = ctx.current_utc_datetime + timedelta(seconds=state["timeout"])
    add = ctx.wait_for_external_event("add")
    timer = ctx.create_timer(fire_at)
    winner = yield dh.when_any([add, timer])
    count, early = state["count"], state["early"]
    if winner is add:
        count += add.get_result()
    elif ctx.current_utc_datetime < fire_at:
        early += 1
    if count >= state["target"]:
        return {"count": count, "early": early, "generation_timeouts": state["timeouts"]}
    timeouts = state["timeouts"] + (winner is timer)
    ctx.continue_as_new({**state, "count": count, "early": early, "timeouts": timeouts}, save_events=True)


@app.orchestrator
def two_gos(ctx: dh.OrchestrationContext, state: dict[str, Any]):
    yield ctx.wait_for_external_event("go")
    if state["seen"] + 1 == 2:
        return "second go"
    ctx.continue_as_new({**state, "seen": state["seen"] + 1}, save_events=state["save"])


@app.orchestrator
def wait_then_call(ctx: dh.OrchestrationContext, value: str):
    yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity(gated, input=value))


@app.orchestrator
def wait_then_count(ctx: dh.OrchestrationContext, key: str):
    yield ctx.wait_for_external_event("go")
    return (yield ctx.call_activity(counted, input=key))


@app.orchestrator
def two_steps(ctx: dh.OrchestrationContext, key: str):
    first = yield ctx.call_activity(counted, input=f"{key}-1")
    second = yield ctx.call_activity(counted, input=f"{key}-2")
    return [first, second]


@pytest.fixture
def settings_1p(azurite: StorageEmulator) -> Iterator[TaskHubSettings]:
    """A fresh hub of one partition: every instance on one control queue, one owner at a time."""
    settings = TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, partition_count=1
    )
    with TaskHub(settings) as hub:
        hub.create()
        yield settings
        hub.delete()


def _conn(settings: TaskHubSettings) -> str:
    return settings.connection_string.get_secret_value()  # type: ignore[union-attr]


def _control_queue(settings: TaskHubSettings, instance_id: str) -> QueueClient:
    return QueueClient.from_connection_string(_conn(settings), settings.names.control_queue_for(instance_id))


def _send(
    settings: TaskHubSettings, instance_id: str, event: ev.HistoryEvent, execution_id: str | None
) -> None:
    """Put a message on the instance's control queue as another worker would."""
    message = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=event,
            orchestration_instance=ev.OrchestrationInstance(
                instance_id=instance_id, execution_id=execution_id
            ),
        ),
        sender=ev.OrchestrationInstance(instance_id=instance_id, execution_id=execution_id),
    )
    with _control_queue(settings, instance_id) as queue:
        queue.send_message(envelope.encode(message), time_to_live=-1)


def _history(client: DurableClient, instance_id: str) -> list[ev.HistoryEvent]:
    return client.get_orchestration_history(instance_id)


def _kinds(history: list[ev.HistoryEvent], kind: type[ev.HistoryEvent]) -> list[Any]:
    return [e for e in history if isinstance(e, kind)]


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


# --- 1. timers longer than the queue's 7-day visibility limit (#1006, #571, DF #14) ---


class _Clock:
    """The runtime's clock, moved forward by the test: ``datetime`` in runtime/orchestrations
    and runtime/checkpoint."""

    offset = timedelta(0)

    class Datetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + _Clock.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Clock]]:
    monkeypatch.setattr(orchestrations, "datetime", _Clock.Datetime)  # episodes' time
    monkeypatch.setattr(checkpoint, "datetime", _Clock.Datetime)  # timers' delays, when sent
    _Clock.offset = timedelta(0)
    yield _Clock
    _Clock.offset = timedelta(0)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[envelope.MessageData, timedelta | None, SentMessage]]:
    """Every message sent through ``AsyncTaskHubQueue.send``, with the delay it was sent with."""
    log: list[tuple[envelope.MessageData, timedelta | None, SentMessage]] = []
    real_send = AsyncTaskHubQueue.send

    async def send(
        self: AsyncTaskHubQueue, message: envelope.MessageData, *, visible_after: Any = None
    ) -> Any:
        result = await real_send(self, message, visible_after=visible_after)
        log.append((message, visible_after, result))
        return result

    monkeypatch.setattr(AsyncTaskHubQueue, "send", send)
    return log


def test_a_ten_day_timer_is_chained_below_the_queue_limit_and_fires_at_its_time(
    settings: TaskHubSettings,
    hub: TaskHub,
    clock: type[_Clock],
    sent: list[tuple[envelope.MessageData, timedelta | None, SentMessage]],
) -> None:
    """Timers over 7 days (#1006, #571, DF #14): no queue message may stay invisible for 7 days.

    The runtime's clock is moved forward by each step, and each step's TimerFired message is
    made visible when its time comes, as the queue would."""
    with DurableClient(settings, hub=hub) as client, dh.Worker(app, settings, options=FAST):
        iid = client.schedule_new_orchestration("sleep_days", input=10, instance_id="ten-days")

        def timer_messages() -> list[tuple[envelope.MessageData, timedelta | None, SentMessage]]:
            return [s for s in sent if isinstance(s[0].event, ev.TimerFired)]

        for step in range(4):
            _wait_for(lambda n=step: len(timer_messages()) > n, 20, f"timer step {step}")
            # Sent before its episode's history is written (the reference's order): wait for both.
            _wait_for(
                lambda n=step: len(_kinds(_history(client, iid), ev.TimerCreated)) > n,
                20,
                f"step {step}'s history",
            )
            message, delay, receipt = timer_messages()[step]
            history = _history(client, iid)
            start = _kinds(history, ev.ExecutionStarted)[0].timestamp.replace(tzinfo=UTC)
            fire_at = [t.fire_at.replace(tzinfo=UTC) for t in _kinds(history, ev.TimerCreated)]
            expected = [start + days * DAY for days in (3, 6, 9, 10)][: step + 1]
            assert [abs(f - e) < timedelta(seconds=2) for f, e in zip(fire_at, expected, strict=True)] == [
                True
            ] * (step + 1), (fire_at, expected)
            assert message.event.fire_at.replace(tzinfo=UTC) == fire_at[-1]  # type: ignore[attr-defined]
            assert delay is not None and delay <= MAX_VISIBILITY_DELAY
            assert timedelta(days=(1 if step == 3 else 3)) - timedelta(seconds=5) < delay
            # Time passes; the queue shows the message at its time.
            clock.offset = fire_at[-1] - datetime.now(UTC) + timedelta(seconds=1)
            with _control_queue(settings, iid) as queue:
                queue.update_message(receipt.message_id, receipt.pop_receipt, visibility_timeout=0)

        state = client.wait_for_orchestration_completion(iid, timeout=30)
        history = _history(client, iid)
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED
    woke = datetime.fromisoformat(state.get_output()).replace(tzinfo=UTC)
    assert woke >= start + 10 * DAY
    assert [e.timer_id for e in _kinds(history, ev.TimerFired)] == [
        e.event_id for e in _kinds(history, ev.TimerCreated)
    ]
    assert all(d is None or d <= MAX_VISIBILITY_DELAY for _, d, _ in sent)


# --- 2. continue_as_new with timers and events in flight (#543, #544, PR #1303) ---


def test_continue_as_new_keeps_every_event_and_ignores_the_previous_generations_timers(
    settings: TaskHubSettings, hub: TaskHub
) -> None:
    """ContinueAsNew message loss (#544) and two generations' messages together (#543).

    Events raised while a generation ends, between its ContinueAsNew commit and the next
    generation's start, are carried over (save_events=True) or wait for the next generation;
    each generation's 2 s timer fires during a later generation and must not reach it."""
    target = 30
    initial = {"count": 0, "early": 0, "timeouts": 0, "target": target, "timeout": 2}
    with DurableClient(settings, hub=hub) as client, dh.Worker(app, settings, options=FAST):
        iid = client.schedule_new_orchestration("event_counter", input=initial, instance_id="can-counter")
        client.wait_for_orchestration_start(iid, timeout=20)
        for burst in range(2):
            for _ in range(target // 2):
                client.raise_orchestration_event(iid, "add", data=1)
                time.sleep(0.03)
            if burst == 0:
                time.sleep(2.5)  # earlier generations' timers fire now
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        history = _history(client, iid)
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED, state
    output = state.get_output()
    assert output["count"] == target and output["early"] == 0, output
    assert len(_kinds(history, ev.ExecutionStarted)) == 1


@pytest.mark.parametrize("save_events", [True, False])
def test_events_buffered_at_continue_as_new_are_carried_over_or_dropped_as_documented(
    settings: TaskHubSettings, hub: TaskHub, save_events: bool
) -> None:
    """ContinueAsNew and events not consumed yet (#544): two "go" events in the first episode's
    batch; the first generation consumes one, the second is carried over only with save_events."""
    with DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("two_gos", input={"seen": 0, "save": save_events})
        client.raise_orchestration_event(iid, "go")
        client.raise_orchestration_event(iid, "go")
        with dh.Worker(app, settings, options=FAST):
            if not save_events:
                _wait_for(
                    lambda: (
                        (s := client.get_orchestration_state(iid)) is not None
                        and s.get_input() == {"seen": 1, "save": False}
                        and _kinds(_history(client, iid), ev.OrchestratorCompleted)
                    ),
                    20,
                    "the second generation to wait",
                )
                time.sleep(1)  # the dropped event does not come back
                assert client.get_orchestration_state(iid).runtime_status is dh.OrchestrationStatus.RUNNING
                client.raise_orchestration_event(iid, "go")
            state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == "second go"


# --- 3. responses that arrive before their scheduling event is committed (§6.1, §6.4) ---


def test_a_response_before_its_scheduling_event_waits_for_it(settings: TaskHubSettings, hub: TaskHub) -> None:
    """Out-of-order responses (taskhub-layout.md §6.1, "IsOutOfOrderMessage"): a TaskCompleted
    whose TaskScheduled is not in history yet is held back, then consumed once it is."""
    gate.clear()
    options = FAST.model_copy(update={"abandon_delay_seconds": 1})
    try:
        with DurableClient(settings, hub=hub) as client, dh.Worker(app, settings, options=options):
            iid = client.schedule_new_orchestration("wait_then_call", input="x", instance_id="early-bird")
            execution_id = client.wait_for_orchestration_start(iid, timeout=20).execution_id
            _wait_for(lambda: _kinds(_history(client, iid), ev.OrchestratorCompleted), 20, "first episode")
            _send(settings, iid, ev.TaskCompleted(task_scheduled_id=0, result='"early"'), execution_id)
            time.sleep(3)  # dequeued and held back a few times
            assert not _kinds(_history(client, iid), ev.TaskCompleted)
            client.raise_orchestration_event(iid, "go")
            state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.get_output() == "early"
            gate.set()  # the real response comes too, and is a duplicate
            with _control_queue(settings, iid) as queue:
                _wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, 20, "drain")
            history = _history(client, iid)
    finally:
        gate.set()
    kinds = [type(e) for e in history]
    assert kinds.count(ev.TaskCompleted) == 1
    assert kinds.index(ev.TaskScheduled) < kinds.index(ev.TaskCompleted)


def test_a_response_whose_scheduling_never_comes_is_discarded_after_n_dequeues(
    settings: TaskHubSettings, hub: TaskHub, caplog: pytest.LogCaptureFixture
) -> None:
    """Out-of-order responses (§4.6, "treated as out-of-order for the first 5 dequeues, then
    discarded"): one that can never match is dropped with a warning, and the instance goes on."""
    options = FAST.model_copy(update={"max_early_message_dequeues": 3})
    caplog.set_level(logging.WARNING, logger="durablehub.worker")
    with DurableClient(settings, hub=hub) as client, dh.Worker(app, settings, options=options):
        iid = client.schedule_new_orchestration("wait_then_count", input="stray", instance_id="stray")
        execution_id = client.wait_for_orchestration_start(iid, timeout=20).execution_id
        _send(settings, iid, ev.TaskCompleted(task_scheduled_id=7, result='"stray"'), execution_id)
        with _control_queue(settings, iid) as queue:
            _wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, 30, "discard")
        client.raise_orchestration_event(iid, "go")
        state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == "stray"
    assert any(
        "stray" in r.getMessage() and "response to id 7" in r.getMessage() and "3 dequeues" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


# --- 4. duplicate start messages (§6.4, DedupeExecutionStartedMessagesAsync) ---


def test_a_start_message_delivered_again_runs_one_execution(settings: TaskHubSettings, hub: TaskHub) -> None:
    """Duplicate ExecutionStarted messages (at-least-once delivery, §6.4): the copy, whether it
    comes before the first episode, while the instance runs or after it completed, is dropped."""
    with DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("wait_then_count", input="dup", instance_id="dup-start")
        with _control_queue(settings, iid) as queue:
            (original,) = queue.peek_messages(max_messages=32)
            again = lambda: queue.send_message(original.content, time_to_live=-1)  # noqa: E731
            again()
            with dh.Worker(app, settings, options=FAST):
                execution_id = client.wait_for_orchestration_start(iid, timeout=20).execution_id
                again()
                time.sleep(1)
                client.raise_orchestration_event(iid, "go")
                state = client.wait_for_orchestration_completion(iid, timeout=30)
                again()
                _wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, 20, "drain")
                after = client.get_orchestration_state(iid)
                history = _history(client, iid)
    assert state.get_output() == "dup" and ran["dup"] == 1
    assert after is not None and after.runtime_status is dh.OrchestrationStatus.COMPLETED
    assert after.execution_id == execution_id
    assert len(_kinds(history, ev.ExecutionStarted)) == 1 and len(_kinds(history, ev.TaskScheduled)) == 1


def test_two_racing_starts_of_one_id_make_one_instance(settings: TaskHubSettings, hub: TaskHub) -> None:
    """Duplicate starts through the client (§6.4): of two schedule_new_orchestration calls for
    the same id at the same moment, one wins and the other is refused."""
    ids = [f"race-{i}" for i in range(5)]
    clients = [DurableClient(settings), DurableClient(settings)]
    try:
        with dh.Worker(app, settings, options=FAST), ThreadPoolExecutor(2) as pool:
            for iid in ids:
                barrier = threading.Barrier(2)

                def start(client: DurableClient, iid: str = iid, barrier: threading.Barrier = barrier) -> str:
                    barrier.wait()
                    try:
                        return client.schedule_new_orchestration(
                            "wait_then_count", input=iid, instance_id=iid
                        )
                    except OrchestrationAlreadyExistsError:
                        return "refused"

                outcomes = sorted(pool.map(start, clients))
                assert outcomes == [iid, "refused"]
            for iid in ids:
                clients[0].raise_orchestration_event(iid, "go")
            for iid in ids:
                state = clients[0].wait_for_orchestration_completion(iid, timeout=30)
                assert state.get_output() == iid
                history = _history(clients[0], iid)
                assert len(_kinds(history, ev.ExecutionStarted)) == 1
                assert ran[iid] == 1
    finally:
        for c in clients:
            c.close()


# --- 5. a worker that lost its lease while committing (DF #38, #1046, #890) ---


@pytest.mark.parametrize("frozen_episode", [1, 2], ids=["first-commit", "later-commit"])
def test_a_worker_that_lost_its_partition_mid_commit_cannot_write_history(
    settings_1p: TaskHubSettings, frozen_episode: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Split brain (DF #38, #1046): worker A freezes after an episode is computed and its
    messages sent, before its history write; its lease is broken and worker B takes the
    partition and finishes the instance. A's late write fails on the sentinel ETag (a 409 on
    the first commit, 412 later), A abandons, and history holds each event once."""
    settings = settings_1p
    caplog.set_level(logging.WARNING, logger="durablehub.worker")
    frozen, thaw = threading.Event(), threading.Event()
    commits = {"n": 0}
    real_commit = AsyncHistoryTable.commit
    a = dh.Worker(app, settings, options=FAST, worker_id="worker-a")

    async def commit(self: AsyncHistoryTable, instance_id: str, *args: Any, **kwargs: Any) -> str:
        if threading.current_thread().name == f"durablehub-worker-{a.worker_id}" and instance_id == "split":
            commits["n"] += 1
            if commits["n"] == frozen_episode:
                frozen.set()
                thaw.wait(60)  # the whole worker hangs, as in a long GC pause or a stopped VM
        return await real_commit(self, instance_id, *args, **kwargs)

    key = f"split{frozen_episode}"
    with pytest.MonkeyPatch.context() as mp, DurableClient(settings) as client:
        mp.setattr(AsyncHistoryTable, "commit", commit)
        a.start()
        try:
            iid = client.schedule_new_orchestration("two_steps", input=key, instance_id="split")
            assert frozen.wait(20), "worker A never reached the frozen commit"
            lease_blob = settings.names.lease_blob(settings.names.control_queue(0))
            with BlobClient.from_connection_string(
                _conn(settings), settings.names.leases_container, lease_blob
            ) as blob:  # the lease is lost: another owner may take the partition now
                BlobLeaseClient(blob).break_lease(lease_break_period=0)
            with dh.Worker(app, settings, options=FAST, worker_id="worker-b"):
                state = client.wait_for_orchestration_completion(iid, timeout=60)
                thaw.set()
                _wait_for(
                    lambda: any("committed by another worker" in r.getMessage() for r in caplog.records),
                    20,
                    "worker A to abandon its episode",
                )
                history = _history(client, iid)
                after = client.get_orchestration_state(iid)
        finally:
            thaw.set()
            a.stop()
    assert state.runtime_status is dh.OrchestrationStatus.COMPLETED and state.get_output() == [
        f"{key}-1",
        f"{key}-2",
    ]
    assert after is not None and after.runtime_status is dh.OrchestrationStatus.COMPLETED
    kinds = [type(e).__name__ for e in history]
    assert kinds.count("ExecutionStarted") == 1 and kinds.count("ExecutionCompleted") == 1
    assert sorted(e.event_id for e in _kinds(history, ev.TaskScheduled)) == [0, 1]
    assert sorted(e.task_scheduled_id for e in _kinds(history, ev.TaskCompleted)) == [0, 1]
