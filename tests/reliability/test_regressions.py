"""Regressions for the reference's known failure classes (taskhub-layout.md §4.5, §6, §8), on Azurite.

Each test names its failure class and, where the reference has one, the issue number. The
crash between the History and Instances writes is in test_instances_row.py, poison messages in
tests/reliability/test_poison*.py, purge by prefix in tests/management.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.runtime import orchestrations
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub import envelope
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
    """The runtime's clock, moved forward by the test: ``datetime`` in runtime/orchestrations."""

    offset = timedelta(0)

    class Datetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + _Clock.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Clock]]:
    monkeypatch.setattr(orchestrations, "datetime", _Clock.Datetime)
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
