"""The dashboard in a real browser (Chromium driven by Playwright) against ``durablehub serve``
with a worker on Azurite: sign in, filter and page the list, open an instance and its
timeline, raise an event and watch the instance complete, terminate, purge; a wrong or missing
key is refused; an input holding ``<script>`` is shown as text."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from durablehub.azurite import free_port
from durablehub.client import DurableClient
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.conftest import StorageEmulator, new_hub_name
from tests.dashboard.browser import chromium, require_chromium
from tests.http.conftest import KEY

if TYPE_CHECKING:  # playwright is imported once Chromium is known to be there
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 30_000  # how long an expectation waits for the page; never a measured duration


@pytest.fixture(scope="module")
def hub_settings(azurite: StorageEmulator) -> Iterator[TaskHubSettings]:
    settings = TaskHubSettings(
        task_hub=new_hub_name(), connection_string=azurite.connection_string, partition_count=2
    )
    with TaskHub(settings) as hub:
        hub.create()
        yield settings
        hub.delete()


@pytest.fixture(scope="module")
def server(hub_settings: TaskHubSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``durablehub serve --app tests.e2e.apps:app`` on a free port; its base URL."""
    require_chromium()  # before starting anything
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "durablehub", "serve", "--app", "tests.e2e.apps:app", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "AzureWebJobsStorage": hub_settings.connection_string.get_secret_value(),
                "DURABLEHUB_TASK_HUB": hub_settings.task_hub,
                "DURABLEHUB_PARTITION_COUNT": str(hub_settings.partition_count),
                "DURABLEHUB_HTTP_KEY": KEY,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/dashboard/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert KEY not in log_path.read_text()


@pytest.fixture(scope="module")
def client(hub_settings: TaskHubSettings) -> Iterator[DurableClient]:
    with DurableClient(hub_settings) as durable:
        yield durable


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context (no cookies), signed in."""
    context = browser.new_context(base_url=server)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    sign_in(tab, KEY)
    yield tab
    context.close()


def sign_in(page: Page, key: str) -> None:
    page.goto("/dashboard/")
    page.fill("#key", key)
    page.click("#login button[type=submit]")


def test_a_wrong_or_missing_key_is_refused(browser: Browser, server: str) -> None:
    context = browser.new_context(base_url=server)
    tab = context.new_page()
    tab.goto("/dashboard/")
    assert tab.url.startswith(f"{server}/dashboard/login")
    tab.click("#login button[type=submit]")  # empty: the browser's own check keeps the form
    assert tab.url.startswith(f"{server}/dashboard/login")
    sign_in(tab, "not-the-key-0123456789")
    assert "the key is not valid" in tab.inner_text("#error")
    tab.goto("/dashboard/")
    assert tab.url.startswith(f"{server}/dashboard/login")
    assert not any(c["name"] == "durablehub_session" for c in context.cookies())
    sign_in(tab, KEY)
    assert tab.url == f"{server}/dashboard/"
    session = next(c for c in context.cookies() if c["name"] == "durablehub_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and KEY not in session["value"]
    assert tab.evaluate("document.cookie") == ""  # nothing a page script can read
    context.close()


def test_list_filter_and_page_through_120_instances(page: Page, client: DurableClient) -> None:
    later = datetime.now(UTC) + timedelta(days=5)  # Pending until then: nothing runs
    for i in range(120):
        client.schedule_new_orchestration("hello_cities", instance_id=f"many-{i:03d}", start_at=later)
    done = client.schedule_new_orchestration("hello_cities", instance_id="few-done")
    client.wait_for_orchestration_completion(done, timeout=60)

    page.fill("#prefix", "many-")
    page.click("#filters button[type=submit]")
    assert "prefix=many-" in page.url  # the URL holds the filters
    seen: list[str] = []
    while True:
        seen += page.locator("#instances td.id a").all_inner_texts()
        if page.locator("#next-page").count() == 0:
            break
        page.click("#next-page")
    assert seen == [f"many-{i:03d}" for i in range(120)]
    assert page.locator("#counts .count[data-status=Pending] b").inner_text() == "120"

    page.goto("/dashboard/?prefix=few-")
    page.check("#filters input[value=Completed]")
    page.click("#filters button[type=submit]")
    assert "status=Completed" in page.url
    assert page.locator("#instances td.id a").all_inner_texts() == ["few-done"]
    page.uncheck("#filters input[value=Completed]")
    page.check("#filters input[value=Running]")
    page.click("#filters button[type=submit]")
    assert page.locator("#instances td.id a").count() == 0


def test_open_an_instance_and_see_one_bar_per_activity(page: Page, client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("fan_out_fan_in", input=5, instance_id="fan-five")
    client.wait_for_orchestration_completion(iid, timeout=60)
    page.goto("/dashboard/?prefix=fan-")
    page.click("text=fan-five")
    assert page.inner_text("#status") == "Completed"
    assert page.locator("#timeline g.bar.activity").count() == 5
    assert page.locator("#timeline g.bar.activity.completed").count() == 5
    assert page.inner_text("#output") == "20"

    # Keyboard: "t" shows times in UTC (local by default), "d" picks the dark theme; both are kept.
    created = page.locator("#summary time").first
    assert not created.inner_text().endswith("UTC")
    page.keyboard.press("t")
    assert created.inner_text().endswith(" UTC")
    page.keyboard.press("d")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    assert page.locator("#summary time").first.inner_text().endswith(" UTC")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"


def test_raise_an_event_from_the_page_and_watch_it_complete(page: Page, client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("approval", input=600, instance_id="expense-1")
    client.wait_for_orchestration_start(iid, timeout=60)
    page.goto(f"/dashboard/instances/{iid}")
    assert page.inner_text("#status") == "Running"
    page.click("#action-raise-event summary")
    page.fill("#action-raise-event input[name=name]", "Approval")
    page.fill("#action-raise-event textarea[name=data]", '{"by": "browser"}')
    page.click("#action-raise-event button[type=submit]")
    page.wait_for_selector("#status:text('Completed')")  # the page refreshes itself...
    page.wait_for_selector("#output:has-text('browser')")  # ...and reloads once it has finished
    assert '"by": "browser"' in page.inner_text("#output")
    assert page.locator("#timeline g.bar.event").count() == 1


def test_terminate_one_and_purge_one(page: Page, client: DurableClient) -> None:
    iid = client.schedule_new_orchestration("approval", input=600, instance_id="to-terminate")
    client.wait_for_orchestration_start(iid, timeout=60)
    page.goto(f"/dashboard/instances/{iid}")
    page.click("#action-terminate summary")
    page.fill("#action-terminate input[name=reason]", "not needed")
    page.click("#action-terminate button[type=submit]")
    page.wait_for_selector("#status:text('Terminated')")
    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status is OrchestrationStatus.TERMINATED

    page.click("#action-purge summary")
    page.click("#action-purge button[type=submit]")
    assert page.url.endswith("/dashboard/?done=purge") and "Purged." in page.inner_text(".notice")
    assert client.get_orchestration_state(iid) is None


def test_an_input_with_a_script_is_shown_as_text(page: Page, client: DurableClient) -> None:
    evil = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    iid = client.schedule_new_orchestration("hello_cities", input=evil, instance_id="evil-input")
    client.wait_for_orchestration_completion(iid, timeout=60)
    page.goto(f"/dashboard/instances/{iid}")
    assert evil in page.inner_text("#input")
    page.goto("/dashboard/?prefix=evil-&io=1")
    assert evil in page.inner_text("#instances")
    assert page.evaluate("window.pwned") is None
