"""Names and ids with control characters are refused by the sidecar with INVALID_ARGUMENT naming
the field (they would forge lines in the text log), from the unmodified durabletask SDK client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client

pytestmark = pytest.mark.azurite

FORGED = "x\r\n2026-01-01 00:00:00,000 CRITICAL durablehub.worker: forged"

CALLS: dict[str, Callable[[dt_client.TaskHubGrpcClient, str], Any]] = {
    "orchestrator name": lambda c, iid: c.schedule_new_orchestration(FORGED, instance_id=f"{iid}-new"),
    "instance id": lambda c, iid: c.schedule_new_orchestration("greet", instance_id=f"{iid}{FORGED}"),
    "event name": lambda c, iid: c.raise_orchestration_event(iid, FORGED, data=1),
}


@pytest.mark.parametrize("field", list(CALLS))
def test_control_characters_are_invalid_arguments(
    sdk_client: dt_client.TaskHubGrpcClient, field: str
) -> None:
    live = sdk_client.schedule_new_orchestration("greet", instance_id=f"live-{field.replace(' ', '-')}")
    with pytest.raises(grpc.RpcError) as refused:
        CALLS[field](sdk_client, live)
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    assert field in error.details() and "control character" in error.details(), error.details()
