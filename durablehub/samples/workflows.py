"""The sample workflows the quickstart runs: what Durable Functions users write, in Python.

* ``ProcessOrder``: function chaining (create order, charge payment, ship, notify).
* ``BackupPhotoAlbum``: fan-out/fan-in (one thumbnail per photo, in parallel, then a total).
* ``ApproveExpense``: human interaction (wait for an ``Approval`` event, or give up after 72 hours).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import durablehub as dh

app = dh.App()
APPROVAL_TIMEOUT = timedelta(hours=72)


@app.activity(name="CreateOrder")
def create_order(ctx: dh.ActivityContext, order: dict[str, Any]) -> str:
    return f"ORD-{order['id']:05d}"


@app.activity(name="ChargePayment")
def charge_payment(ctx: dh.ActivityContext, charge: dict[str, Any]) -> str:
    digest = hashlib.sha1(f"{charge['order_id']}:{charge['amount']}".encode()).hexdigest()[:10]
    return f"PAY-{digest}"


@app.activity(name="ShipOrder")
def ship_order(ctx: dh.ActivityContext, order_id: str) -> str:
    return f"TRACK-{order_id[-5:]}-EU"


@app.activity(name="SendNotification")
async def send_notification(ctx: dh.ActivityContext, message: str) -> bool:
    return bool(message)


@app.orchestrator(name="ProcessOrder")
def process_order(ctx: dh.OrchestrationContext, order: dict[str, Any]):
    retry = dh.RetryPolicy(
        first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3, backoff_coefficient=2.0
    )
    ctx.set_custom_status("creating order")
    order_id = yield ctx.call_activity("CreateOrder", input=order)
    ctx.set_custom_status("charging payment")
    payment = yield ctx.call_activity(
        "ChargePayment", input={"order_id": order_id, "amount": order["amount"]}, retry_policy=retry
    )
    ctx.set_custom_status("shipping")
    tracking = yield ctx.call_activity("ShipOrder", input=order_id)
    ctx.set_custom_status("notifying customer")
    yield ctx.call_activity("SendNotification", input=f"{order_id} shipped as {tracking}")
    ctx.set_custom_status("done")
    return {"order": order_id, "payment": payment, "tracking": tracking}


@app.activity(name="CreateThumbnail")
def create_thumbnail(ctx: dh.ActivityContext, photo: str) -> int:
    return len(photo) * 1024  # the thumbnail's size in bytes


@app.orchestrator(name="BackupPhotoAlbum")
def backup_photo_album(ctx: dh.OrchestrationContext, photos: list[str]):
    sizes = yield dh.when_all([ctx.call_activity("CreateThumbnail", input=p) for p in photos])
    return {"photos": len(photos), "bytes": sum(sizes)}


@app.orchestrator(name="ApproveExpense")
def approve_expense(ctx: dh.OrchestrationContext, expense: dict[str, Any]):
    ctx.set_custom_status(f"waiting for approval of {expense['amount']} EUR")
    approval = ctx.wait_for_external_event("Approval")
    timeout = ctx.create_timer(ctx.current_utc_datetime + APPROVAL_TIMEOUT)
    winner = yield dh.when_any([approval, timeout])
    if winner is timeout:
        ctx.set_custom_status("escalated: no answer within 72 hours")
        return {"expense": expense["id"], "approved": False, "reason": "timed out"}
    decision = approval.get_result()
    ctx.set_custom_status("decided")
    return {"expense": expense["id"], "approved": bool(decision["approved"]), "by": decision["by"]}
