"""Whole orchestrations run through the engine and plan_episode in an in-memory runtime.

Every episode of every test is also replayed cold and compared with the cached executor.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.models import OrchestrationStatus
from durablehub.task import ActivityContext, OrchestrationContext, RetryPolicy, TaskFailedError, when_all
from durablehub.testing.history import T0

from .simulator import Simulation

Status = OrchestrationStatus
app = App()


@app.activity(name="Hello")
def hello(ctx: ActivityContext, city: str) -> str:
    return f"Hello {city}!"


@app.activity
async def square(ctx: ActivityContext, n: int) -> int:
    return n * n


@app.orchestrator(name="HelloCities")
def hello_cities(ctx: OrchestrationContext, _: None):
    results = []
    for city in ["Tokyo", "Seattle", "London"]:
        results.append((yield ctx.call_activity(hello, input=city)))
    return results


@app.orchestrator
def sum_of_squares(ctx: OrchestrationContext, n: int):
    return sum((yield when_all([ctx.call_activity(square, input=i) for i in range(n)])))


def test_function_chaining() -> None:
    sim = Simulation(app)
    sim.start("HelloCities")
    sim.run()
    assert sim.status() is Status.COMPLETED
    assert sim.output() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert sim.instances["root"].episodes == 4


def test_fan_out_fan_in_with_async_activities() -> None:
    sim = Simulation(app)
    sim.start("sum_of_squares", 10)
    sim.run()
    assert sim.output() == sum(i * i for i in range(10))
    assert len(sim.activity_calls) == 10


# --- sub-orchestrations and sagas ---

trips = App()
FAIL_ON: set[str] = set()


def booking(name: str):
    def book(ctx: ActivityContext, trip: str) -> str:
        if name in FAIL_ON:
            raise RuntimeError(f"{name} unavailable")
        return f"{name}:{trip}"

    book.__name__ = name
    return book


for step in ["BookFlight", "BookHotel", "BookCar", "CancelFlight", "CancelHotel", "CancelCar"]:
    trips.activity(booking(step))


@trips.orchestrator(name="BookTrip")
def book_trip(ctx: OrchestrationContext, trip: str):
    done: list[str] = []
    try:
        for step in ["BookFlight", "BookHotel", "BookCar"]:
            yield ctx.call_activity(step, input=trip)
            done.append(step)
    except TaskFailedError as exc:
        for step in reversed(done):
            yield ctx.call_activity("Cancel" + step.removeprefix("Book"), input=trip)
        raise RuntimeError(f"trip {trip} compensated: {exc.details.message}") from exc
    return done


@trips.orchestrator(name="Vacation")
def vacation(ctx: OrchestrationContext, trips_: list[str]):
    outcomes = []
    for trip in trips_:
        try:
            outcomes.append(
                (yield ctx.call_sub_orchestrator(book_trip, input=trip, instance_id=f"trip-{trip}"))
            )
        except TaskFailedError as exc:
            outcomes.append(exc.details.message)
    return outcomes


def test_sub_orchestrations_and_saga_compensation() -> None:
    FAIL_ON.clear()
    FAIL_ON.add("BookCar")
    try:
        sim = Simulation(trips)
        sim.start("Vacation", ["rome"])
        sim.run()
    finally:
        FAIL_ON.clear()
    assert sim.output() == ["trip rome compensated: BookCar unavailable"]
    assert [name for name, _ in sim.activity_calls] == [
        "BookFlight",
        "BookHotel",
        "BookCar",
        "CancelHotel",
        "CancelFlight",
    ]
    child = sim.instances["trip-rome"]
    assert child.status is Status.FAILED and child.failure is not None
    assert child.failure.error_type == "builtins.RuntimeError"
    started = child.history[1]
    assert isinstance(started, ev.ExecutionStarted) and started.parent_instance is not None
    assert started.parent_instance.orchestration_instance.instance_id == "root"


def test_sub_orchestration_results_reach_the_parent() -> None:
    sim = Simulation(trips)
    sim.start("Vacation", ["oslo", "lima"])
    sim.run()
    assert sim.output() == [["BookFlight", "BookHotel", "BookCar"]] * 2
    assert sim.status("trip-oslo") is Status.COMPLETED


# --- events between instances, continue-as-new, timers, retries ---

misc = App()
ATTEMPTS: dict[str, int] = {}


@misc.orchestrator
def waiter(ctx: OrchestrationContext, _: None):
    return (yield ctx.wait_for_external_event("Ping"))


@misc.orchestrator
def pinger(ctx: OrchestrationContext, target: str):
    ctx.send_event(target, "Ping", data="from pinger")
    yield ctx.create_timer(timedelta(seconds=1))
    return "sent"


@misc.orchestrator
def accumulator(ctx: OrchestrationContext, state: dict):
    value = yield ctx.wait_for_external_event("Add")
    total = state["total"] + value
    if total >= state["target"]:
        return total
    ctx.continue_as_new({"total": total, "target": state["target"]}, save_events=state.get("save", True))


@misc.activity
def flaky(ctx: ActivityContext, key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


@misc.orchestrator
def retrying(ctx: OrchestrationContext, key: str):
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=10), max_number_of_attempts=5, backoff_coefficient=3
    )
    result = yield ctx.call_activity(flaky, input=key, retry_policy=policy)
    return [result, ctx.current_utc_datetime.isoformat()]


@misc.orchestrator
def long_sleeper(ctx: OrchestrationContext, days: int):
    yield ctx.create_timer(timedelta(days=days))
    return ctx.current_utc_datetime.isoformat()


@misc.orchestrator
def patient_parent(ctx: OrchestrationContext, _: None):
    try:
        yield ctx.call_sub_orchestrator(waiter, instance_id="kid")
    except TaskFailedError as exc:
        return f"child ended: {exc.details.message}"


def test_send_event_between_instances() -> None:
    sim = Simulation(misc)
    sim.start("waiter", instance_id="w")
    sim.start("pinger", "w", instance_id="p")
    sim.run()
    assert sim.output("w") == "from pinger"
    assert sim.output("p") == "sent"


def test_continue_as_new_with_carried_events() -> None:
    sim = Simulation(misc)
    sim.start("accumulator", {"total": 0, "target": 6})
    for n in (1, 2, 3):
        sim.raise_event("root", "Add", n)
    sim.run()
    assert sim.output() == 6
    assert sim.instances["root"].generations == 3
    started = sim.instances["root"].history[1]
    assert isinstance(started, ev.ExecutionStarted) and started.generation == 2


def test_continue_as_new_without_saving_events_drops_them() -> None:
    sim = Simulation(misc)
    sim.start("accumulator", {"total": 0, "target": 6, "save": False})
    for n in (1, 2, 3):
        sim.raise_event("root", "Add", n)
    sim.run()
    assert sim.status() is Status.RUNNING  # events 2 and 3 were lost with the first generation
    sim.raise_event("root", "Add", 5)
    sim.run()
    assert sim.output() == 6


def test_retries_wait_on_the_virtual_clock() -> None:
    ATTEMPTS.clear()
    sim = Simulation(misc)
    sim.start("retrying", "job")
    sim.run()
    assert sim.output() == ["ok after 3", (T0 + timedelta(seconds=40)).replace(tzinfo=None).isoformat()]
    fire_times = [e.fire_at - T0 for e in sim.instances["root"].history if isinstance(e, ev.TimerCreated)]
    assert fire_times == [timedelta(seconds=10), timedelta(seconds=40)]


def test_a_ten_day_timer_runs_as_four_chained_timers() -> None:
    sim = Simulation(misc)
    sim.start("long_sleeper", 10)
    sim.run()
    assert sim.output() == (T0 + timedelta(days=10)).replace(tzinfo=None).isoformat()
    timers = [e for e in sim.instances["root"].history if isinstance(e, ev.TimerCreated)]
    assert [(t.event_id, (t.fire_at - T0).days) for t in timers] == [(0, 3), (1, 6), (2, 9), (3, 10)]


def test_terminating_a_child_fails_the_parents_call() -> None:
    sim = Simulation(misc)
    sim.start("patient_parent")
    sim.run()
    sim.terminate("kid", "no longer needed")
    sim.run()
    assert sim.status("kid") is Status.TERMINATED
    assert sim.output() == 'child ended: "no longer needed"'


@pytest.mark.parametrize("recurse", [True, False])
def test_a_recursive_terminate_reaches_running_children(recurse: bool) -> None:
    sim = Simulation(misc)
    sim.start("patient_parent")
    sim.run()
    sim.terminate("root", "stop everything", recurse=recurse)
    sim.run()
    assert sim.status("root") is Status.TERMINATED
    assert sim.status("kid") is (Status.TERMINATED if recurse else Status.RUNNING)
    if recurse:
        assert sim.output("kid") == "stop everything"


def test_suspend_and_resume() -> None:
    sim = Simulation(misc)
    sim.start("waiter")
    sim.run()
    sim.suspend("root")
    sim.raise_event("root", "Ping", "held")
    sim.run()
    assert sim.status() is Status.SUSPENDED
    sim.resume("root")
    sim.run()
    assert sim.output() == "held"


def test_messages_for_finished_instances_are_dropped() -> None:
    sim = Simulation(misc)
    sim.start("waiter")
    sim.raise_event("root", "Ping", 1)
    sim.run()
    sim.raise_event("root", "Ping", 2)
    sim.run()
    assert sim.output() == 1
    assert len(sim.dropped) == 1
