"""Every link, stylesheet, script and GET form on every dashboard page resolves (a crawl from the
instance list and the entities page over a real hub), and a timer is drawn from its creation to
its fire time."""

from __future__ import annotations

import asyncio
import re
import uuid
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import pytest

import durablehub as dh
from durablehub.async_client import AsyncDurableClient

pytestmark = pytest.mark.azurite
MAX_PAGES = 150  # enough to reach every kind of page from the seeds; a crawl must end


class Links(HTMLParser):
    """The URLs a page makes the browser load or lets the user follow with GET."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        wanted = {"a": "href", "link": "href", "script": "src", "img": "src"}.get(tag)
        if tag == "form" and (values.get("method") or "get").lower() == "get":
            wanted = "action"
        if wanted and values.get(wanted):
            self.found.append(str(values[wanted]))


def links_of(page: httpx.Response) -> list[str]:
    parser = Links()
    parser.feed(page.text)
    return [urldefrag(urljoin(str(page.url), link)).url for link in parser.found]


async def test_every_link_and_stylesheet_on_every_page_resolves(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    key = f"links{uuid.uuid4().hex[:8]}"
    cart = dh.EntityInstanceId("ShoppingCart", key)
    await durable.signal_entity(cart, "AddItem", "apple")
    done = await durable.schedule_new_orchestration("hello_cities", instance_id=f"{key}-done")
    await durable.schedule_new_orchestration("approval", input=600, instance_id=f"{key}-waiting")
    await durable.wait_for_orchestration_completion(done, timeout=30)
    for _ in range(300):
        if await durable.get_entity(cart) is not None:
            break
        await asyncio.sleep(0.1)

    seeds = [
        f"/dashboard/?prefix={key}",
        "/dashboard/entities",
        f"/dashboard/entities?prefix=@shoppingcart@{key}",
        f"/dashboard/entities/shoppingcart/{key}",
        "/dashboard/hub",
    ]
    queue = [f"http://testserver{s}" for s in seeds]
    seen: set[str] = set(queue)
    broken: list[str] = []
    pages = 0
    while queue and pages < MAX_PAGES:
        url = queue.pop(0)
        answer = await browser.get(url)
        pages += 1
        if answer.status_code == 404:
            broken.append(f"{url} (from the crawl)")
            continue
        assert answer.status_code < 400, (url, answer.status_code, answer.text[:300])
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        for link in links_of(answer):
            parts = urlsplit(link)
            if parts.netloc != "testserver" or link in seen:
                continue
            seen.add(link)
            if not parts.path.startswith("/dashboard"):
                broken.append(f"{link} (on {url}: outside the dashboard)")
            else:
                queue.append(link)
    assert not broken, "\n".join(broken)


async def test_a_timer_is_drawn_from_its_creation_to_its_fire_time(
    browser: httpx.AsyncClient, durable: AsyncDurableClient
) -> None:
    iid = await durable.schedule_new_orchestration("monitor", input={"checks": 1, "interval": 2})
    await durable.wait_for_orchestration_completion(iid, timeout=60)
    page = await browser.get(f"/dashboard/instances/{iid}")
    assert page.status_code == 200
    row = re.search(r"<tr[^>]*>((?:(?!</tr>).)*<td>TimerFired</td>.*?)</tr>", page.text, re.S)
    assert row is not None, page.text
    took = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))[1]  # event id, then duration
    assert took.endswith(" s") and float(took.split()[0]) >= 2.0, took
    timer = r'<g class="bar timer fired".*?<rect x="[^"]+" y="[^"]+" width="([^"]+)"'
    bar = re.search(timer, page.text, re.S)
    assert bar is not None, page.text
    # The timer is most of the instance's life (2 s of about 2 s): far more than the 2 px minimum.
    assert float(bar.group(1)) > 200, bar.group(1)
