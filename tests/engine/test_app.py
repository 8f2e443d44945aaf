"""App: registering orchestrators, activities and entities by name."""

from __future__ import annotations

import functools

import pytest

from durablehub.app import App, RegisteredActivity
from durablehub.engine.actions import CreateSubOrchestration, ScheduleTask
from durablehub.errors import ConfigurationError
from durablehub.task import ActivityContext, OrchestrationContext, get_name
from durablehub.testing import history as h


def test_decorators_work_with_and_without_arguments() -> None:
    app = App()

    @app.activity
    def plain(ctx: ActivityContext, x: int) -> int:
        return x

    @app.activity(name="Named")
    def named(ctx: ActivityContext, x: int) -> int:
        return x

    @app.activity()
    def empty_parens(ctx: ActivityContext, x: int) -> int:
        return x

    @app.orchestrator
    def orch(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity(plain)

    @app.orchestrator(name="Orch2")
    def orch2(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity(named)

    assert app.activity_names == ["Named", "empty_parens", "plain"]
    assert app.orchestrator_names == ["Orch2", "orch"]
    assert app.get_activity("Named") == RegisteredActivity(name="Named", fn=named, is_async=False)
    assert app.get_orchestrator("Orch2").fn is orch2
    assert plain(None, 3) == 3  # type: ignore[arg-type]  # decorators return the function itself


def test_calls_by_function_reference_use_the_registered_name() -> None:
    app = App()

    @app.activity(name="ChargeCreditCard")
    def charge(ctx: ActivityContext, order: dict) -> str:
        return "ok"

    @app.orchestrator(name="Child")
    def child(ctx: OrchestrationContext, _: None) -> None:
        return None

    def parent(ctx: OrchestrationContext, _: None):
        yield ctx.call_activity(charge, input={})
        yield ctx.call_sub_orchestrator(child, instance_id="c")

    first = h.replay(parent, new=[h.started("Parent")])
    assert first.actions == (ScheduleTask(id=0, name="ChargeCreditCard", input="{}"),)
    second = h.replay(
        parent, past=[h.started("Parent"), h.task_scheduled(0, "ChargeCreditCard")], new=[h.task_completed(0)]
    )
    assert second.actions == (CreateSubOrchestration(id=1, name="Child", instance_id="c"),)
    assert get_name(charge) == "ChargeCreditCard" and get_name("Any") == "Any"


def test_async_activities_are_flagged() -> None:
    app = App()

    @app.activity
    async def fetch(ctx: ActivityContext, url: str) -> str:
        return url

    assert app.get_activity("fetch").is_async


def test_async_orchestrators_are_refused() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="orchestrator 'orch' is async"):

        @app.orchestrator
        async def orch(ctx: OrchestrationContext, _: None) -> None:
            return None


def test_duplicate_names_are_refused() -> None:
    app = App()

    @app.activity(name="Work")
    def first(ctx: ActivityContext, _: None) -> None:
        return None

    with pytest.raises(ConfigurationError, match="an activity named 'Work' is already registered"):
        app.activity(name="Work")(lambda ctx, x: x)
    # Orchestrators and activities have separate name spaces, as in durabletask.
    app.orchestrator(name="Work")(first)


def test_unknown_names_list_what_is_registered() -> None:
    app = App()
    app.add_activity(lambda ctx, x: x, name="B")
    app.add_activity(lambda ctx, x: x, name="A")
    with pytest.raises(
        LookupError, match=r"no activity named 'C' is registered; registered activities: 'A', 'B'"
    ):
        app.get_activity("C")
    with pytest.raises(
        LookupError, match="no orchestrator named 'X' is registered; registered orchestrators: none"
    ):
        app.get_orchestrator("X")


def test_names_must_be_usable() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="pass name="):
        app.add_activity(lambda ctx, x: x)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        app.add_activity(lambda ctx, x: x, name=" ")
    with pytest.raises(ConfigurationError, match="not callable"):
        app.add_orchestrator("process_order")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot take a name"):
        get_name(lambda: None)


def test_callables_without_attributes_can_still_be_registered() -> None:
    app = App()

    def work(ctx: ActivityContext, x: int, scale: int) -> int:
        return x * scale

    scaled = functools.partial(work, scale=2)
    assert app.add_activity(scaled, name="Scaled") == "Scaled"
    assert app.add_activity(str.upper, name="Upper") == "Upper"  # a builtin: no name note, still registered
    assert app.get_activity("Upper").fn is str.upper


def test_entities_are_registered_ignoring_case() -> None:
    app = App()

    @app.entity
    class Counter:
        pass

    @app.entity(name="ShoppingCart")
    def cart(ctx: object, operation: object) -> None:
        return None

    assert app.get_entity("counter").target is Counter
    assert app.get_entity("SHOPPINGCART").name == "ShoppingCart"
    assert app.entity_names == ["Counter", "ShoppingCart"]
    with pytest.raises(ConfigurationError, match="an entity named 'Counter' is already registered"):
        app.add_entity(lambda ctx, op: None, name="COUNTER")
    with pytest.raises(
        LookupError, match="no entity named 'Thing' is registered; registered entities: 'Counter'"
    ):
        app.get_entity("Thing")
