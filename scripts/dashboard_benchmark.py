"""Benchmark of the dashboard: how long its pages take to render from a real hub, as a browser
asks for them (through the app, storage reads included). Prints figures, asserts nothing. Each
page is asked for five times: the first answer reads everything from storage; later ones of an
instance that has not changed reuse its history (the dashboard keeps the last few read).

On its own Azurite: 1,000 instances (scheduled for later, so no worker load) for the list and
the counts, and one orchestration of about 10,000 history events (fan-outs of ``--width``
activities) for the instance page, its timeline and the first and last history pages.

    .venv/bin/python scripts/dashboard_benchmark.py [--instances 1000] [--events 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from durablehub.http import HttpSettings, create_app

KEY = "benchmark-key-0123456789"
RUNS = 5
app = dh.App()


@app.activity
def noop(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


@app.orchestrator
def long_history(ctx: dh.OrchestrationContext, spec: dict[str, int]):
    for _ in range(spec["rounds"]):
        yield dh.when_all([ctx.call_activity(noop, input=None) for _ in range(spec["width"])])
    return spec["rounds"]


async def timed(http: httpx.AsyncClient, label: str, url: str, **kwargs: Any) -> None:
    times = []
    size = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = await http.get(url, **kwargs)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
        size = len(answer.content)
    print(
        f"  {label:<52} first {times[0] * 1000:>6.0f} ms, "
        f"then median {statistics.median(times[1:]) * 1000:>5.0f} ms ({size / 1024:,.0f} KiB)"
    )


async def measure(settings: dh.TaskHubSettings, instances: int, long_id: str, history_pages: int) -> None:
    async with dh.AsyncDurableClient(settings) as client:
        api = create_app(http_settings=HttpSettings(key=KEY, allowed_hosts=["bench"]), client=client)
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http:
            await http.get("/dashboard/login")
            token = http.cookies.get("durablehub_csrf") or ""
            assert (await http.post("/dashboard/login", data={"key": KEY, "csrf": token})).status_code == 303
            print(f"list of {instances:,} instances:")
            for size in (50, 500):
                await timed(http, f"instance list, a page of {size}", f"/dashboard/?size={size}")
            await timed(http, "instance list, a page of 50 with payloads", "/dashboard/?size=50&io=1")
            await timed(http, "counts by status (every row read)", "/dashboard/counts")
            print("one instance:")
            await timed(
                http, "instance page (summary, timeline, history page 1)", f"/dashboard/instances/{long_id}"
            )
            await timed(http, "history, last page", f"/dashboard/instances/{long_id}?hpage={history_pages}")
            await timed(
                http,
                "timeline alone (the live refresh)",
                f"/dashboard/instances/{long_id}",
                headers={"x-dashboard-fragment": "timeline"},
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=250, help="activities per fan-out round")
    options = parser.parse_args()
    with AzuriteProcess(location=tempfile.mkdtemp(prefix="azurite-dashbench-")) as azurite:
        settings = dh.TaskHubSettings(task_hub="DashBench", connection_string=azurite.connection_string)
        with dh.Worker(app, settings), dh.DurableClient(settings) as client:
            later = datetime.now(UTC) + timedelta(days=5)
            started = time.perf_counter()
            for i in range(options.instances):
                client.schedule_new_orchestration(long_history, instance_id=f"later-{i:05d}", start_at=later)
            print(f"started {options.instances:,} instances in {time.perf_counter() - started:.1f} s")
            rounds = max(1, options.events // (2 * options.width + 4))
            started = time.perf_counter()
            long_id = client.schedule_new_orchestration(
                long_history, input={"rounds": rounds, "width": options.width}, instance_id="long"
            )
            client.wait_for_orchestration_completion(long_id, timeout=1800)
            events = len(client.get_orchestration_history(long_id))
            print(f"ran one instance to {events:,} history events in {time.perf_counter() - started:.1f} s\n")
        asyncio.run(measure(settings, options.instances, long_id, -(-events // 100)))


if __name__ == "__main__":
    main()
