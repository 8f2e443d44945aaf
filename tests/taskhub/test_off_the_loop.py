"""Gzip and JSON of large bodies run off the event loop (issue 10, item 7): on the loop, a
few hundred MB would stall lease renewal for a whole lease period.

Each CPU-bound call on a large input -- ``json.dumps``/``json.loads``, ``gzip.compress``,
zlib inflation -- is recorded with the thread it ran on, while the asyncio adapters send and
receive a large message and write and read a large Instances value and History property.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durablehub.engine import history as ev
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.names import escape_partition_key

pytestmark = pytest.mark.azurite
LARGE = 1024 * 1024


class Calls:
    """Which thread each large call ran on: (what, thread id)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def record(self, what: str) -> None:
        self.seen.append((what, threading.get_ident()))

    def kinds(self) -> set[str]:
        return {what for what, _ in self.seen}

    def on(self, thread: int) -> list[str]:
        return [what for what, ident in self.seen if ident == thread]


class _Inflater:
    def __init__(self, inner: Any, calls: Calls) -> None:
        self._inner = inner
        self._calls = calls

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._inner.decompress(data, max_length)
        if len(out) >= 64 * 1024:
            self._calls.record("inflate")
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    seen = Calls()
    dumps, loads, compress, decompressobj = json.dumps, json.loads, gzip.compress, zlib.decompressobj

    def spy(name: str, fn: Callable[..., Any], size: Callable[..., int]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            if size(args, result) >= LARGE:
                seen.record(name)
            return result

        return wrapper

    monkeypatch.setattr(json, "dumps", spy("json.dumps", dumps, lambda a, r: len(r)))
    monkeypatch.setattr(json, "loads", spy("json.loads", loads, lambda a, r: len(a[0])))
    monkeypatch.setattr(gzip, "compress", spy("gzip", compress, lambda a, r: len(a[0])))
    monkeypatch.setattr(zlib, "decompressobj", lambda *a, **k: _Inflater(decompressobj(*a, **k), seen))
    yield seen


async def test_large_bodies_are_encoded_compressed_and_read_back_off_the_loop(
    async_hub: AsyncTaskHub, calls: Calls
) -> None:
    loop_thread = threading.get_ident()
    payload = json.dumps({"rows": [f"row {n} of a large input" for n in range(200_000)]})
    assert len(payload) > 4 * LARGE
    target = ev.OrchestrationInstance(instance_id="big-1", execution_id="e1")
    message = envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.EventRaised(name="data", input=payload), orchestration_instance=target
        )
    )
    calls.seen.clear()

    queue = async_hub.control_queue_for("big-1")
    await queue.send(message)
    [received] = await queue.receive(visibility_timeout=timedelta(seconds=30))
    assert received.message is not None and received.message.event.input == payload

    row = {"PartitionKey": escape_partition_key("big-1"), "RowKey": "", "Input": payload}
    await async_hub.instances.upsert_merge(row)
    stored = await async_hub.instances.get("big-1")
    assert stored is not None and stored["Input"] == payload

    started = ev.ExecutionStarted(
        orchestration_instance=target, name="Big", input=payload, timestamp=datetime.now(UTC)
    )
    await async_hub.history.commit("big-1", "e1", [started], first_sequence_number=0, sentinel_etag=None)
    page = await async_hub.history.load("big-1")
    assert page.events[0].input == payload  # type: ignore[attr-defined]

    assert {"json.dumps", "json.loads", "gzip", "inflate"} <= calls.kinds()  # the work did happen
    assert calls.on(loop_thread) == []  # and none of it on the loop
