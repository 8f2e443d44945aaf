"""The worked example of README's "Deploying new orchestrator code": v1 of an order workflow,
and three candidate v2 apps (versions side by side, a patch, and a reordering that breaks the
instances in flight)."""

from __future__ import annotations

import durablehub as dh


def _activities(app: dh.App) -> dh.App:
    for name in ("Reserve", "Notify", "Ship"):
        app.add_activity(lambda ctx, order, name=name: f"{name} {order}", name=name)
    return app


def process_order_v1(ctx: dh.OrchestrationContext, order: str):
    yield ctx.call_activity("Reserve", input=order)
    yield ctx.wait_for_external_event("Paid")
    yield ctx.call_activity("Ship", input=order)
    return "shipped v1"


def process_order_v2(ctx: dh.OrchestrationContext, order: str):
    yield ctx.call_activity("Reserve", input=order)
    yield ctx.call_activity("Notify", input=order)  # new in v2
    yield ctx.wait_for_external_event("Paid")
    yield ctx.call_activity("Ship", input=order)
    return "shipped v2"


def process_order_patched(ctx: dh.OrchestrationContext, order: str):
    yield ctx.call_activity("Reserve", input=order)
    if ctx.is_patched("notify-customer"):  # False for instances that passed here before
        yield ctx.call_activity("Notify", input=order)
    yield ctx.wait_for_external_event("Paid")
    yield ctx.call_activity("Ship", input=order)
    return "shipped patched"


def process_order_reordered(ctx: dh.OrchestrationContext, order: str):
    yield ctx.call_activity("Ship", input=order)  # moved first: not what running instances did
    yield ctx.call_activity("Reserve", input=order)
    yield ctx.wait_for_external_event("Paid")
    return "shipped early"


v1 = _activities(dh.App())
v1.add_orchestrator(process_order_v1, name="ProcessOrder")

# Versions: the old code stays registered for the old instances.
v2 = _activities(dh.App())
v2.add_orchestrator(process_order_v1, name="ProcessOrder", version="1.0")
v2.add_orchestrator(process_order_v2, name="ProcessOrder", version="2.0")

v2_patched = _activities(dh.App())
v2_patched.add_orchestrator(process_order_patched, name="ProcessOrder")

v2_reordered = _activities(dh.App())
v2_reordered.add_orchestrator(process_order_reordered, name="ProcessOrder")
