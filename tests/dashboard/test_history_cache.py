"""A history is read from storage once per instance generation and update, however many of its
pages are shown, and read again once the instance changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from durablehub.dashboard.routes import HistoryCache
from durablehub.models import OrchestrationStatus
from durablehub.state import OrchestrationState
from durablehub.testing import history as h


class CountingClient:
    def __init__(self) -> None:
        self.reads: list[tuple[str, str | None]] = []

    async def get_orchestration_history(self, instance_id: str, *, execution_id: str | None = None) -> Any:
        self.reads.append((instance_id, execution_id))
        return [h.started("Flow")] * len(self.reads)


async def test_reads_once_per_update_and_again_after_one() -> None:
    client = CountingClient()
    cache = HistoryCache(size=2)
    state = OrchestrationState(
        instance_id="a",
        name="Flow",
        runtime_status=OrchestrationStatus.RUNNING,
        created_at=h.T0,
        last_updated_at=h.T0,
        execution_id="e1",
    )
    first = await cache.get(client, state)  # type: ignore[arg-type]
    assert await cache.get(client, state) is first and client.reads == [("a", "e1")]
    updated = replace(state, last_updated_at=h.T0 + timedelta(seconds=1))
    assert len(await cache.get(client, updated)) == 2  # type: ignore[arg-type]
    restarted = replace(updated, execution_id="e2")
    await cache.get(client, restarted)  # type: ignore[arg-type]
    await cache.get(client, state)  # type: ignore[arg-type]  # evicted (size 2): read again
    assert client.reads == [("a", "e1"), ("a", "e1"), ("a", "e2"), ("a", "e1")]


async def test_the_summary_reuses_any_history_of_the_same_execution() -> None:
    client = CountingClient()
    cache = HistoryCache()
    state = OrchestrationState(
        instance_id="a",
        name="Flow",
        runtime_status=OrchestrationStatus.RUNNING,
        created_at=h.T0,
        last_updated_at=h.T0,
        execution_id="e1",
    )
    assert cache.latest(state) is None
    first = await cache.get(client, state)  # type: ignore[arg-type]
    later = replace(state, last_updated_at=h.T0 + timedelta(seconds=5))
    assert cache.latest(later) is first  # who started it does not change within an execution
    assert cache.latest(replace(later, execution_id="e2")) is None
    assert client.reads == [("a", "e1")]


def test_long_running_timelines_refresh_less_often() -> None:
    from durablehub.dashboard.timeline import refresh_seconds

    assert [refresh_seconds(n) for n in (0, 999, 1000, 1001, 10_000)] == [2, 2, 2, 4, 20]
