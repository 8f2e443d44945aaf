"""The dashboard's pages and actions over a real hub: the list with its filters and paging, an
instance with its payloads, history and timeline, and each action through the client."""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import quote

import httpx
import pytest

from durablehub.async_client import AsyncDurableClient
from durablehub.dashboard import views
from durablehub.models import OrchestrationStatus
from tests.dashboard.conftest import csrf

pytestmark = pytest.mark.azurite


def new_prefix() -> str:
    return f"dash{uuid.uuid4().hex[:8]}-"


def ids_on(page: httpx.Response) -> list[str]:
    return re.findall(r'<td class="id"><a href="[^"]+">([^<]+)</a>', page.text)


async def test_list_filters_by_prefix_and_status_and_pages_with_the_token(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    prefix = new_prefix()
    for i in range(25):
        await durable.schedule_new_orchestration("approval", input=600, instance_id=f"{prefix}{i:03d}")
    done = await durable.schedule_new_orchestration("hello_cities", instance_id=f"{prefix}done")
    await durable.wait_for_orchestration_completion(done, timeout=30)

    first = await browser.get("/dashboard/", params={"prefix": prefix, "size": "20"})
    assert first.status_code == 200
    assert ids_on(first) == [f"{prefix}{i:03d}" for i in range(20)]
    next_link = re.search(r'href="([^"]+)" id="next-page"', first.text)
    assert next_link is not None
    second = await browser.get(next_link.group(1).replace("&amp;", "&"))
    assert ids_on(second) == [f"{prefix}{i:03d}" for i in range(20, 25)] + [f"{prefix}done"]
    assert 'id="next-page"' not in second.text and f"prefix={prefix}" in next_link.group(1)

    completed = await browser.get("/dashboard/", params={"prefix": prefix, "status": "Completed"})
    assert ids_on(completed) == [f"{prefix}done"]
    by_name = await browser.get("/dashboard/", params={"prefix": prefix, "name": "hello"})
    assert ids_on(by_name) == [f"{prefix}done"]

    counts = await browser.get(
        "/dashboard/counts", params={"prefix": prefix}, headers={"x-dashboard-fragment": "counts"}
    )
    found = dict(re.findall(r'data-status="(\w+)">\w+ <b>(\d+)</b>', counts.text))
    assert found["Completed"] == "1" and int(found["Running"]) + int(found["Pending"]) == 25

    for i in range(25):
        await durable.terminate_orchestration(f"{prefix}{i:03d}")


async def test_bad_filters_are_a_400_naming_them(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/dashboard/", params={"status": "Sleeping"})
    assert page.status_code == 400 and "unknown status &#39;Sleeping&#39;" in page.text
    page = await browser.get("/dashboard/", params={"page": "not-a-token"})
    assert page.status_code == 400


async def test_an_instance_page_shows_status_payloads_history_and_timeline(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration(
        "fan_out_fan_in", input=4, instance_id=new_prefix() + "fan"
    )
    await durable.wait_for_orchestration_completion(iid, timeout=30)
    page = await browser.get(f"/dashboard/instances/{quote(iid)}")
    assert page.status_code == 200
    assert 'id="status">Completed<' in page.text
    assert '<pre id="input">4</pre>' in page.text and '<pre id="output">12</pre>' in page.text
    assert page.text.count('data-kind="activity"') == 4
    assert page.text.count("<td>TaskCompleted</td>") == 4
    assert 'id="action-purge"' in page.text and 'id="action-terminate"' not in page.text

    missing = await browser.get("/dashboard/instances/no-such-instance")
    assert missing.status_code == 404 and "no instance &#39;no-such-instance&#39;" in missing.text


async def test_values_from_storage_are_escaped(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    evil = '<script>alert("x")</script>'
    iid = await durable.schedule_new_orchestration("approval", input=600, instance_id=new_prefix() + "evil")
    await durable.raise_orchestration_event(iid, evil, data={"note": evil})
    await durable.terminate_orchestration(iid, output=evil)
    await durable.wait_for_orchestration_completion(iid, timeout=30)
    page = await browser.get(f"/dashboard/instances/{quote(iid)}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text  # the output, as text
    listed = await browser.get("/dashboard/", params={"prefix": iid, "io": "1"})
    assert "<script>alert" not in listed.text and "&lt;script&gt;" in listed.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_raise_an_event_from_the_page_and_the_instance_completes(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration("approval", input=600, instance_id=new_prefix() + "ok")
    await durable.wait_for_orchestration_start(iid, timeout=30)
    bad = await browser.post(
        f"/dashboard/instances/{iid}/raise-event", data={"csrf": csrf(browser), "name": "X", "data": "{oops"}
    )
    assert bad.status_code == 400 and "the event data is not valid JSON" in bad.text
    # Nothing typed is lost: the form is open again with the name and data as they were sent.
    assert '<details class="action" id="action-raise-event" open>' in bad.text
    assert 'name="name" required maxlength="200" value="X"' in bad.text and ">{oops</textarea>" in bad.text

    sent = await browser.post(
        f"/dashboard/instances/{iid}/raise-event",
        data={"csrf": csrf(browser), "name": "Approval", "data": '{"by": "ops"}'},
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=raise-event")
    state = await durable.wait_for_orchestration_completion(iid, timeout=30)
    assert state.get_output() == {"approved": {"by": "ops"}}

    finished = await browser.post(
        f"/dashboard/instances/{iid}/raise-event", data={"csrf": csrf(browser), "name": "X", "data": ""}
    )
    assert finished.status_code == 410  # as the API answers: the instance has finished
    assert 'role="alert"' in finished.text and "Completed" in finished.text


async def test_terminate_suspend_resume_restart_and_purge(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration("approval", input=600, instance_id=new_prefix() + "ops")
    await durable.wait_for_orchestration_start(iid, timeout=30)

    async def act(action: str, **fields: str) -> httpx.Response:
        return await browser.post(
            f"/dashboard/instances/{iid}/{action}", data={"csrf": csrf(browser), **fields}
        )

    assert (await act("suspend", reason="look")).status_code == 303
    await _wait_for(durable, iid, OrchestrationStatus.SUSPENDED)
    assert (await act("resume")).status_code == 303
    await _wait_for(durable, iid, OrchestrationStatus.RUNNING)
    assert (await act("terminate", reason="enough")).status_code == 303
    state = await durable.wait_for_orchestration_completion(iid, timeout=30)
    assert state.runtime_status is OrchestrationStatus.TERMINATED and state.get_output() == "enough"

    restarted = await act("restart", new_id="1")
    assert restarted.status_code == 303
    new_id = restarted.headers["location"].split("/instances/")[1].split("?")[0]
    assert new_id != iid and await durable.get_orchestration_state(new_id) is not None
    await durable.terminate_orchestration(new_id)

    purged = await act("purge")
    assert purged.status_code == 303 and purged.headers["location"] == "/dashboard/?done=purge"
    assert await durable.get_orchestration_state(iid) is None
    assert (await act("purge")).status_code == 404  # as the API answers an unknown id


async def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration("approval", input=600, instance_id=new_prefix() + "csrf")
    url = f"/dashboard/instances/{iid}/terminate"
    assert (await browser.post(url, data={})).status_code == 403
    assert (await browser.post(url, data={"csrf": "x" * 43})).status_code == 403
    cross = await browser.post(url, data={"csrf": csrf(browser)}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    plain = await browser.post(url, content=b"csrf=x", headers={"content-type": "text/plain"})
    assert plain.status_code == 400
    state = await durable.get_orchestration_state(iid)
    assert state is not None and not state.runtime_status.is_terminal  # nothing happened
    await durable.terminate_orchestration(iid)


async def _wait_for(durable: AsyncDurableClient, iid: str, status: OrchestrationStatus) -> None:
    for _ in range(300):
        state = await durable.get_orchestration_state(iid, fetch_payloads=False)
        if state is not None and state.runtime_status is status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{iid} never reached {status.name}")


async def test_failures_sub_orchestrations_and_rewind(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    parent = await durable.schedule_new_orchestration("parent", input=[1, 2], instance_id=new_prefix() + "p")
    await durable.wait_for_orchestration_completion(parent, timeout=30)
    page = await browser.get(f"/dashboard/instances/{parent}")
    assert page.text.count('data-kind="orchestration"') == 3
    assert page.text.count('class="bar orchestration failed"') == 1  # the child given -1
    assert f'href="/dashboard/instances/{parent}-child-0"' in page.text
    child_page = await browser.get(f"/dashboard/instances/{parent}-child-0")
    assert f'id="parent">{parent}</a>' in child_page.text

    failed = await durable.schedule_new_orchestration("child", input=-5, instance_id=new_prefix() + "f")
    state = await durable.wait_for_orchestration_completion(failed, timeout=30)
    assert state.runtime_status is OrchestrationStatus.FAILED
    page = await browser.get(f"/dashboard/instances/{failed}")
    assert 'id="failure"' in page.text and "<b>builtins.ValueError</b>: negative input -5" in page.text
    assert '<pre class="stack">' in page.text and 'id="action-rewind"' in page.text
    rewound = await browser.post(
        f"/dashboard/instances/{failed}/rewind", data={"csrf": csrf(browser), "reason": "retry"}
    )
    assert rewound.status_code == 303 and rewound.headers["location"].endswith("?done=rewind")
    completed = await browser.post(f"/dashboard/instances/{parent}/rewind", data={"csrf": csrf(browser)})
    assert completed.status_code == 410 and 'role="alert"' in completed.text  # as the API answers


async def test_the_name_filter_reads_on_until_a_page_is_full(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    prefix = new_prefix()
    for i in range(25):  # ids sort before the matching ones: the first table page holds no match
        await durable.schedule_new_orchestration("approval", input=600, instance_id=f"{prefix}a{i:03d}")
    for i in range(3):
        await durable.schedule_new_orchestration("hello_cities", instance_id=f"{prefix}z{i}")
    page = await browser.get("/dashboard/", params={"prefix": prefix, "size": "20", "name": "HELLO"})
    assert ids_on(page) == [f"{prefix}z{i}" for i in range(3)]
    assert 'id="next-page"' not in page.text
    for i in range(25):
        await durable.terminate_orchestration(f"{prefix}a{i:03d}")


async def test_a_large_payload_is_cut_on_the_page_and_downloaded_whole(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    data = "x" * 300_000 + "<end>"
    iid = await durable.schedule_new_orchestration(
        "big_payload", input=data, instance_id=new_prefix() + "big"
    )
    await durable.wait_for_orchestration_completion(iid, timeout=60)
    page = await browser.get(f"/dashboard/instances/{iid}")
    assert page.status_code == 200 and len(page.text) < 2 * views.PAYLOAD_SHOWN_CHARS + 100_000
    assert "&lt;end&gt;" not in page.text  # cut before its end...
    assert f'href="/dashboard/instances/{iid}/payload/input"' in page.text  # ...with the whole a click away
    whole = await browser.get(f"/dashboard/instances/{iid}/payload/input")
    assert whole.status_code == 200 and whole.json() == data
    assert whole.headers["content-type"].startswith("application/json")
    assert whole.headers["content-disposition"].startswith("attachment")
    output = await browser.get(f"/dashboard/instances/{iid}/payload/output")
    assert output.json() == data + "!"
    assert (await browser.get(f"/dashboard/instances/{iid}/payload/secrets")).status_code == 404
