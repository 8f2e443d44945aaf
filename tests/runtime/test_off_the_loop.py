"""A worker's event loop never encodes, decodes or compresses a large payload itself (issue 10,
item 7): orchestrations and activities with multi-megabyte inputs and results run while every
large ``json.dumps``/``json.loads``, gzip and inflation is recorded with its thread's name."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub

pytestmark = pytest.mark.azurite
LARGE = 1024 * 1024

app = dh.App()


@app.activity
async def count_async(ctx: dh.ActivityContext, rows: list[str]) -> list[str]:
    await asyncio.sleep(0)
    return [*rows, "async"]


@app.activity
def count_sync(ctx: dh.ActivityContext, rows: list[str]) -> list[str]:
    return [*rows, "sync"]


@app.orchestrator
def both(ctx: dh.OrchestrationContext, rows: list[str]):
    first = yield ctx.call_activity(count_async, input=rows)
    second = yield ctx.call_activity(count_sync, input=first)
    return len(second)


def test_a_worker_loop_leaves_large_payloads_to_other_threads(
    settings: TaskHubSettings, hub: TaskHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []  # (what, thread name)
    dumps, loads, compress, decompressobj = json.dumps, json.loads, gzip.compress, zlib.decompressobj

    def spy(name: str, fn: Callable[..., Any], size: Callable[..., int]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            if size(args, result) >= LARGE:
                seen.append((name, threading.current_thread().name))
            return result

        return wrapper

    class Inflater:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            if len(out) >= 64 * 1024:
                seen.append(("inflate", threading.current_thread().name))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr(json, "dumps", spy("json.dumps", dumps, lambda a, r: len(r)))
    monkeypatch.setattr(json, "loads", spy("json.loads", loads, lambda a, r: len(a[0])))
    monkeypatch.setattr(gzip, "compress", spy("gzip", compress, lambda a, r: len(a[0])))
    monkeypatch.setattr(zlib, "decompressobj", lambda *a, **k: Inflater(decompressobj(*a, **k)))

    rows = [f"row {n} of a large input" for n in range(100_000)]
    with dh.Worker(app, settings), DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("both", input=rows)
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == dh.OrchestrationStatus.COMPLETED and state.get_output() == 100_002

    on_workers = {what for what, thread in seen if thread.startswith("durablehub-worker-")}
    assert {what for what, _ in seen} >= {"json.dumps", "json.loads", "gzip", "inflate"}
    assert on_workers == set(), [s for s in seen if s[1].startswith("durablehub-worker-")]
