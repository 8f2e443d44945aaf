"""InstanceWaits: one shared poll per instance id, which keeps polling whatever one read brings."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("durabletask")

from durablehub import _client_core as core  # noqa: E402
from durablehub.models import OrchestrationStatus  # noqa: E402
from durablehub.sidecar.waits import InstanceWaits  # noqa: E402


async def test_a_poll_that_fails_past_its_read_keeps_polling_for_its_waiters() -> None:
    """A state the poll cannot schedule from (here a created time without a zone) is logged and
    polled again, not the end of the shared poll that strands every waiter until its timeout."""
    states: list[Any] = [
        SimpleNamespace(runtime_status=OrchestrationStatus.RUNNING, created_at=datetime(2020, 1, 1)),
        SimpleNamespace(runtime_status=OrchestrationStatus.COMPLETED, created_at=datetime.now(UTC)),
    ]

    async def read(instance_id: str) -> Any:
        return states.pop(0) if len(states) > 1 else states[0]

    waits = InstanceWaits(read, missing_poll=0.2)
    state = await waits.wait("i", core.is_complete, timeout=5)
    assert state.runtime_status is OrchestrationStatus.COMPLETED
    assert waits.polling == 0
