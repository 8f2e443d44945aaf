"""Entities, hub health (queues, partitions, workers, poison with requeue), starting an
instance and purging by filter from the dashboard, against a real hub."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import durablehub as dh
from durablehub.async_client import AsyncDurableClient
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker
from tests.dashboard.conftest import csrf, dashboard_client, sign_in
from tests.e2e.apps import app as e2e_app

pytestmark = pytest.mark.azurite
HOLD = timedelta(seconds=30)


async def test_entities_list_page_and_signal(browser: httpx.AsyncClient, durable: AsyncDurableClient) -> None:
    key = f"u{uuid.uuid4().hex[:8]}"
    cart = dh.EntityInstanceId("ShoppingCart", key)
    await durable.signal_entity(cart, "AddItem", "<b>apple</b>")
    for _ in range(300):
        if await durable.get_entity(cart) is not None:
            break
        await asyncio.sleep(0.1)

    listed = await browser.get("/dashboard/entities", params={"prefix": f"@shoppingcart@{key}", "state": "1"})
    assert listed.status_code == 200
    assert f'href="/dashboard/entities/shoppingcart/{key}">{key}</a>' in listed.text
    assert "&lt;b&gt;apple&lt;/b&gt;" in listed.text and "<b>apple" not in listed.text

    page = await browser.get(f"/dashboard/entities/shoppingcart/{key}")
    assert page.status_code == 200 and "&lt;b&gt;apple&lt;/b&gt;" in page.text
    assert 'id="backlog">0 waiting requests' in page.text

    sent = await browser.post(
        f"/dashboard/entities/shoppingcart/{key}/signal",
        data={"csrf": csrf(browser), "operation": "AddItem", "input": '"pear"'},
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=signal")
    for _ in range(300):
        metadata = await durable.get_entity(cart)
        if metadata is not None and metadata.get_state() == ["<b>apple</b>", "pear"]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the signal from the page never reached the entity")
    whole = await browser.get(f"/dashboard/entities/shoppingcart/{key}/state")
    assert whole.json() == ["<b>apple</b>", "pear"] and whole.headers["content-disposition"].startswith(
        "attachment"
    )

    bad = await browser.post(
        f"/dashboard/entities/shoppingcart/{key}/signal",
        data={"csrf": csrf(browser), "operation": "AddItem", "input": "pear"},
    )
    assert bad.status_code == 400 and "the operation input is not valid JSON" in bad.text
    assert '<details class="action" id="action-signal" open>' in bad.text and ">pear</textarea>" in bad.text
    missing = await browser.get("/dashboard/entities/shoppingcart/nobody-here")
    assert missing.status_code == 404
    cleaned = await browser.post("/dashboard/entities-clean", data={"csrf": csrf(browser), "empty": "1"})
    assert cleaned.status_code == 303 and "done=clean&removed=" in cleaned.headers["location"]


async def test_start_an_instance_and_purge_by_filter(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = f"started-{uuid.uuid4().hex[:8]}"
    started = await browser.post(
        "/dashboard/start",
        data={"csrf": csrf(browser), "name": "fan_out_fan_in", "instance_id": iid, "input": "3"},
    )
    assert (
        started.status_code == 303 and started.headers["location"] == f"/dashboard/instances/{iid}?done=start"
    )
    state = await durable.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == 6
    unknown = await browser.post("/dashboard/start", data={"csrf": csrf(browser), "name": "NoSuchFlow"})
    assert unknown.status_code == 400 and "no orchestrator named &#39;NoSuchFlow&#39;" in unknown.text
    assert '<details class="action" id="action-start" open>' in unknown.text  # as it was sent
    assert 'value="NoSuchFlow"' in unknown.text
    taken = await browser.post(
        "/dashboard/start",
        data={"csrf": csrf(browser), "name": "approval", "instance_id": iid, "input": "600"},
    )
    assert taken.status_code == 303  # a finished instance may be replaced, as the client allows
    await durable.terminate_orchestration(iid)
    await durable.wait_for_orchestration_completion(iid, timeout=30)

    no_end = await browser.post("/dashboard/purge", data={"csrf": csrf(browser), "status": "Terminated"})
    assert no_end.status_code == 400 and "purging has no undo" in no_end.text
    assert '<details class="action" id="action-purge-by" open>' in no_end.text
    assert 'value="Terminated" checked' in no_end.text
    live = await browser.post(
        "/dashboard/purge", data={"csrf": csrf(browser), "status": "Running", "to": "2100-01-01T00:00"}
    )
    assert live.status_code == 400  # the client refuses a live status
    created = state.created_at
    window = {
        "from": (created - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        "to": (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    }
    purged = await browser.post(
        "/dashboard/purge", data={"csrf": csrf(browser), "status": "Terminated", **window}
    )
    assert purged.status_code == 303
    count = int(re.search(r"n=(\d+)", purged.headers["location"]).group(1))  # type: ignore[union-attr]
    assert count >= 1 and await durable.get_orchestration_state(iid) is None
    notice = await browser.get(purged.headers["location"])
    assert f"Purged {count} finished instances." in notice.text


async def test_hub_health_shows_queues_partitions_workers_and_requeues_poison(hub: TaskHub) -> None:
    async with AsyncDurableClient(hub.settings) as durable, dashboard_client(durable) as http:
        await sign_in(http)
        iid = await durable.schedule_new_orchestration("hello_cities", instance_id="poisoned")
        control = hub.control_queue_for(iid)
        [start] = control.receive(visibility_timeout=HOLD)
        assert hub.quarantine(control, start, reason="it <crashed> the worker")
        await durable.schedule_new_orchestration("hello_cities", instance_id="waiting")

        page = await http.get("/dashboard/hub")
        assert page.status_code == 200
        waiting_queue = hub.control_queue_for("waiting").name
        row = re.search(
            rf'data-queue="{waiting_queue}">.*?class="num length">(\d+)</td>\s*<td>(.*?)</td>',
            page.text,
            re.S,
        )
        assert row is not None and row.group(1) == "1" and " old " in row.group(2)
        assert page.text.count("<td>free</td>") == hub.names.partition_count
        assert 'id="workers">No worker holds a partition' in page.text
        assert "it &lt;crashed&gt; the worker" in page.text and f">{iid}</a>" in page.text
        message_id = re.search(r'name="id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

        none = await http.post("/dashboard/hub/requeue", data={"csrf": csrf(http)})
        assert none.status_code == 400 and "choose the messages to requeue" in none.text
        done = await http.post("/dashboard/hub/requeue", data={"csrf": csrf(http), "id": message_id})
        assert done.status_code == 200 and f"back to {control.name}" in done.text
        assert "Empty: no message has been set aside." in done.text

        async with Worker(e2e_app, hub.settings) as worker:
            state = await durable.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status is dh.OrchestrationStatus.COMPLETED  # the requeued start ran
            for _ in range(100):
                health = await http.get("/dashboard/hub", headers={"x-dashboard-fragment": "health"})
                if health.text.count("<td>held</td>") == hub.names.partition_count:
                    break
                await asyncio.sleep(0.2)
            assert health.text.startswith('<section id="health"')  # the part alone, for the refresh
            assert f'<td class="id">{worker.worker_id}</td>' in health.text
