"""The main job on a local Azurite: a worker runs the sample workflows, a client drives them.

Run by ``scripts/quickstart.sh``. Azurite's data lives in ``.azurite/`` so the hub can be
opened afterwards (``durablehub azurite`` + Azure Storage Explorer); the emulator is stopped
when the job ends. With ``--serve`` it is not: the management API and the dashboard are served
for the hub (with a worker for the sample app) until Ctrl-C, so the waiting expense approval
can be approved from the dashboard.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from durablehub.samples.workflows import app

ROOT = Path(__file__).resolve().parent.parent


def show(client: dh.DurableClient, ids: list[str], seen: dict[str, str]) -> bool:
    """Print each instance's progress when it changes; True when all have finished."""
    finished = True
    for iid in ids:
        state = client.get_orchestration_state(iid)
        if state is None:
            finished = False
            continue
        line = f"{state.runtime_status.name:<10} {state.get_custom_status()}"
        if state.runtime_status.is_terminal:
            line += f" -> {state.get_output()}"
        else:
            finished = False
        if seen.get(iid) != line:
            seen[iid] = line
            print(f"  {iid:<24} {line}")
    return finished


def serve_dashboard(settings: dh.TaskHubSettings, port: int) -> None:
    """The HTTP API and the dashboard for the hub, with a worker for the samples, until Ctrl-C."""
    import uvicorn

    from durablehub.http import HttpSettings, create_app

    key = os.environ.get("DURABLEHUB_HTTP_KEY") or secrets.token_urlsafe(24)
    api = create_app(settings, HttpSettings(key=key), worker_app=app)
    print(
        f"\ndashboard: http://127.0.0.1:{port}/dashboard/  (sign in with the key {key})\n"
        'Open the waiting expense, raise the event Approval with {"approved": true, "by": "you"} '
        "and watch its timeline finish. Ctrl-C stops the server and Azurite."
    )
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="then serve the dashboard until Ctrl-C")
    parser.add_argument("--port", type=int, default=7071, help="the dashboard's port (7071)")
    options = parser.parse_args()
    with AzuriteProcess(location=ROOT / ".azurite") as azurite:
        print("Azurite is running on 127.0.0.1 (data in .azurite/)")
        settings = dh.TaskHubSettings(task_hub="DurableHubDemo", connection_string=azurite.connection_string)
        with dh.Worker(app, settings) as worker, dh.DurableClient(settings) as client:
            print(f"worker {worker.worker_id} owns {', '.join(worker.owned_partitions)}\n")
            started = time.monotonic()
            suffix = str(int(time.time()))
            ids = [
                client.schedule_new_orchestration(
                    "ProcessOrder", input={"id": 42, "amount": 99.5}, instance_id=f"order-42-{suffix}"
                ),
                client.schedule_new_orchestration(
                    "BackupPhotoAlbum",
                    input=[f"photo-{n:03d}.jpg" for n in range(50)],
                    instance_id=f"album-{suffix}",
                ),
                client.schedule_new_orchestration(
                    "ApproveExpense", input={"id": "EXP-7", "amount": 240}, instance_id=f"expense-7-{suffix}"
                ),
                client.schedule_new_orchestration(
                    "ApproveExpense", input={"id": "EXP-8", "amount": 5000}, instance_id=f"expense-8-{suffix}"
                ),
            ]
            seen: dict[str, str] = {}
            for iid in ids[2:]:
                client.wait_for_orchestration_start(iid, timeout=30)
            show(client, ids, seen)
            print("\n  (a manager approves EXP-7; EXP-8 keeps waiting for its 72-hour timeout)\n")
            client.raise_orchestration_event(ids[2], "Approval", data={"approved": True, "by": "manager"})
            while not show(client, ids[:3], seen) and time.monotonic() - started < 60:
                time.sleep(0.2)
            show(client, ids, seen)
            waiting = client.get_orchestration_state(ids[3])
            print(
                f"\n{len(ids) - 1} workflows completed in {time.monotonic() - started:.1f} s; "
                f"{ids[3]} is {waiting.runtime_status.name}: {waiting.get_custom_status()}"
            )
            print(
                f"worker ran {worker.episodes_run} episodes and {worker.activities_executed} activities "
                f"with {worker.counter.total} storage requests"
            )
        if options.serve:
            serve_dashboard(settings, options.port)
            return
    print(
        f"See them in the dashboard: ./scripts/quickstart.sh --serve, then "
        f"http://127.0.0.1:{options.port}/dashboard/"
    )
    print(
        "Azurite stopped. Open the hub later: durablehub azurite, then Azure Storage Explorer "
        "(local emulator) → DurableHubDemoHistory / DurableHubDemoInstances."
    )


if __name__ == "__main__":
    main()
