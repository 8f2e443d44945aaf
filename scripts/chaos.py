"""Chaos run: 500 orchestrations while a random worker is killed (SIGKILL) every few seconds.

Four ``durablehub worker`` processes share one hub on a local Azurite (with a data folder), or
on the storage that ``AzureWebJobsStorage`` names. The workload mixes chains, fan-outs, timers,
external events, sub-orchestrations and continue-as-new (``durablehub.testing.chaos``). It
prints lost / stuck / wrong instances (each must be 0), duplicate activity executions, and
how long each kill took to be taken over. Exit code 1 if anything was lost, stuck or wrong.

    .venv/bin/python scripts/chaos.py [--orchestrations 500] [--workers 4] [--kill-every 3 6]
                                      [--schedule-over 120] [--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

import durablehub as dh
from durablehub.azurite import AzuriteProcess
from durablehub.testing.chaos import ChaosRun, workload

ROOT = Path(__file__).resolve().parents[1]


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrations", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(3.0, 6.0), metavar=("MIN", "MAX"))
    parser.add_argument(
        "--schedule-over", type=float, default=120.0, help="spread the starts over this many seconds"
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds to wait for completion")
    parser.add_argument("--logs", type=Path, help="keep the worker logs in this folder (default: discarded)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        connection = os.environ.get("AzureWebJobsStorage")
        azurite = None
        if not connection:
            azurite = AzuriteProcess(location=Path(scratch) / "azurite").start()
            connection = azurite.connection_string
        try:
            settings = dh.TaskHubSettings(
                task_hub=f"chaos{uuid.uuid4().hex[:8]}",
                connection_string=connection,
                partition_count=args.partitions,
            )
            print(
                f"chaos: {args.orchestrations} orchestrations, {args.workers} workers, a SIGKILL every "
                f"{args.kill_every[0]:g}-{args.kill_every[1]:g} s, starts spread over "
                f"{args.schedule_over:g} s, hub {settings.task_hub}",
                flush=True,
            )
            run = ChaosRun(
                settings, args.logs or Path(scratch) / "logs", workers=args.workers, cwd=ROOT, say=say
            )
            try:
                report = run.run(
                    workload(args.orchestrations, prefix="chaos"),
                    kill_every=tuple(args.kill_every),  # type: ignore[arg-type]
                    deadline=args.deadline,
                    schedule_over=args.schedule_over,
                )
            finally:
                run.stop_all()
            print()
            print("\n".join(report.lines()))
            return 0 if report.ok else 1
        finally:
            if azurite is not None:
                azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
