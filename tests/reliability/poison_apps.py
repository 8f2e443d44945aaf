"""An App whose code kills its worker process while a marker file exists: what poison is for.

Run as ``durablehub worker tests.reliability.poison_apps:app``. Removing the marker is
"fixing the cause".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import durablehub as dh

app = dh.App()
CRASH_EXIT_CODE = 17


def _crash_if(marker: str) -> None:
    if Path(marker).exists():
        os._exit(CRASH_EXIT_CODE)  # as a segfault or the OOM killer would: no cleanup at all


@app.activity
def crash_unless_fixed(ctx: dh.ActivityContext, marker: str) -> str:
    # Works a moment first, as a real activity does before it runs out of memory. A work item
    # handed over in memory starts once its episode is committed, but (to keep a step to one
    # round trip) without waiting for the delete of the message that triggered the episode; a
    # crash within those milliseconds brings that message back as well, a committed duplicate
    # that is dropped -- yet with this test's max_dequeue_count=1 it would be poisoned first.
    time.sleep(1)
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
