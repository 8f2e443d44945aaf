"""Screenshots of the dashboard for the README (docs/dashboard/*.png), taken from the
quickstart's workflows: a private Azurite, ``durablehub serve`` with a worker for the samples,
the quickstart's four instances, and Chromium driven by Playwright.

    .venv/bin/python scripts/dashboard_screenshots.py [--out docs/dashboard]

Needs the system's Chromium (/usr/bin/chromium; scripts/setup.sh installs it as root).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import durablehub as dh
from durablehub.azurite import AzuriteProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
KEY = "screenshot-key-0123456789"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]


def run_workflows(settings: dh.TaskHubSettings) -> None:
    """The quickstart's instances: an order, an album, one expense approved, one waiting."""
    with dh.DurableClient(settings) as client:
        client.schedule_new_orchestration(
            "ProcessOrder", input={"id": 42, "amount": 99.5}, instance_id="order-42"
        )
        photos = [f"photo-{n:03d}.jpg" for n in range(12)]
        client.schedule_new_orchestration("BackupPhotoAlbum", input=photos, instance_id="album-1")
        for expense in ("EXP-7", "EXP-8"):
            client.schedule_new_orchestration(
                "ApproveExpense", input={"id": expense, "amount": 240}, instance_id=f"expense-{expense[-1]}"
            )
        for iid in ("order-42", "album-1"):
            client.wait_for_orchestration_completion(iid, timeout=60)
        client.wait_for_orchestration_start("expense-7", timeout=60)
        client.raise_orchestration_event("expense-7", "Approval", data={"approved": True, "by": "manager"})
        client.wait_for_orchestration_completion("expense-7", timeout=60)
        client.wait_for_orchestration_start("expense-8", timeout=60)


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(base_url=base, viewport={"width": 1280, "height": 760})
        page.goto("/dashboard/")
        page.fill("#key", KEY)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#counts .count")
        page.screenshot(path=str(out / "list.png"))
        page.goto("/dashboard/instances/order-42")
        page.locator("#timeline").scroll_into_view_if_needed()
        page.screenshot(path=str(out / "timeline.png"))
        page.goto("/dashboard/hub")
        page.screenshot(path=str(out / "hub.png"))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    with AzuriteProcess(location=tempfile.mkdtemp(prefix="azurite-shots-")) as azurite:
        settings = dh.TaskHubSettings(task_hub="DurableHubDemo", connection_string=azurite.connection_string)
        port = free_port()
        env = {
            **os.environ,
            "AzureWebJobsStorage": azurite.connection_string,
            "DURABLEHUB_TASK_HUB": settings.task_hub,
            "DURABLEHUB_HTTP_KEY": KEY,
        }
        command = [sys.executable, "-m", "durablehub", "serve", "--app", "durablehub.samples.workflows:app"]
        server = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(f"{base}/dashboard/login", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            run_workflows(settings)
            shoot(base, options.out)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"screenshots in {options.out}")


if __name__ == "__main__":
    main()
