"""An App whose code kills its worker process while a marker file exists: what poison is for.

Run as ``durablehub worker tests.reliability.poison_apps:app``. Removing the marker is
"fixing the cause".
"""

from __future__ import annotations

import os
from pathlib import Path

import durablehub as dh

app = dh.App()
CRASH_EXIT_CODE = 17


def _crash_if(marker: str) -> None:
    if Path(marker).exists():
        os._exit(CRASH_EXIT_CODE)  # as a segfault or the OOM killer would: no cleanup at all


@app.activity
def crash_unless_fixed(ctx: dh.ActivityContext, marker: str) -> str:
    # Crashes at once: a work item handed over in memory starts only after the episode that
    # scheduled it is committed, so the crash is charged to the work item, not the episode.
    _crash_if(marker)
    return "activity ran"


@app.activity
def echo(ctx: dh.ActivityContext, value: str) -> str:
    return value


@app.orchestrator
def calls_crashing_activity(ctx: dh.OrchestrationContext, marker: str):
    return (yield ctx.call_activity(crash_unless_fixed, input=marker))


@app.orchestrator
def crashes_until_fixed(ctx: dh.OrchestrationContext, marker: str):
    _crash_if(marker)
    return (yield ctx.call_activity(echo, input="orchestration ran"))
