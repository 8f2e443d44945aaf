"""An activity that fails with secrets and a CR/LF in its message, on a real worker: its spans'
statuses and exception events carry the message with the secrets masked, and the worker's
FunctionFailed lines carry the error type and the masked, escaped message."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.telemetry import tracing
from tests.telemetry.tracking_records import Records

pytestmark = pytest.mark.azurite

SIG, KEY = "c2lnbmF0dXJlLXNlY3JldA", "YWNjb3VudC1rZXktc2VjcmV0"
MESSAGE = (
    f"upload to https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig={SIG} failed "
    f"(AccountKey={KEY};)\r\n2026-01-01 00:00:00,000 CRITICAL durablehub.worker: forged"
)

app = dh.App()


@app.activity(name="ReserveInventory")
def reserve_inventory(ctx: dh.ActivityContext, _: Any) -> None:
    raise PermissionError(MESSAGE)


@app.orchestrator(name="PlaceOrder")
def place_order(ctx: dh.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity("ReserveInventory")


def _place_order(settings: TaskHubSettings, hub: TaskHub) -> int:
    """Runs PlaceOrder to its failure under a span of the test; its trace id."""
    with (
        dh.Worker(app, settings, options=WorkerOptions(max_poll_interval_seconds=0.2)),
        DurableClient(settings, hub=hub) as client,
    ):
        with trace.get_tracer("tests").start_as_current_span("request") as request:
            iid = client.schedule_new_orchestration("PlaceOrder")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status is dh.OrchestrationStatus.FAILED, state
    return request.get_span_context().trace_id


def _texts(span: Any) -> list[str]:
    """What an exported span says about its failure: its status and its events' attributes."""
    texts = [span.status.description or ""]
    for event in span.events:
        texts += [str(v) for v in (event.attributes or {}).values()]
    return texts


def test_span_statuses_mask_secrets(settings: TaskHubSettings, hub: TaskHub, spans) -> None:
    trace_id = _place_order(settings, hub)
    found = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    failed = {f"{s.name} [{s.kind.name}]": s.status.description for s in found if not s.status.is_ok}
    assert {"activity:ReserveInventory [CLIENT]", "activity:ReserveInventory [SERVER]"} <= failed.keys()
    assert "orchestration:PlaceOrder [SERVER]" in failed, failed
    leaked = {
        f"{s.name} [{s.kind.name}]": _texts(s) for s in found if any(SIG in t or KEY in t for t in _texts(s))
    }
    assert not leaked, leaked
    for name in ("activity:ReserveInventory [CLIENT]", "activity:ReserveInventory [SERVER]"):
        assert "sig=***" in (failed[name] or "") and "AccountKey=***" in (failed[name] or ""), failed


def test_exception_events_of_client_spans_mask_secrets(spans) -> None:
    with pytest.raises(ConnectionError), tracing.raising_event("Approval", "order-1"):
        raise ConnectionError(MESSAGE)
    [span] = spans.get_finished_spans()
    assert not span.status.is_ok and [e.name for e in span.events] == ["exception"]
    texts = _texts(span)
    assert not [t for t in texts if SIG in t or KEY in t], texts
    assert span.events[0].attributes["exception.type"].endswith("ConnectionError")
    assert "sig=***" in span.events[0].attributes["exception.message"]


def test_failure_lines_carry_the_masked_error(
    settings: TaskHubSettings, hub: TaskHub, tracked: Records
) -> None:
    _place_order(settings, hub)
    failures = {
        getattr(r, "functionType", ""): r
        for r in tracked.records
        if getattr(r, "event", "") == "FunctionFailed"
    }
    assert failures.keys() == {"Activity", "Orchestrator"}, [r.getMessage() for r in tracked.records]
    for kind, record in failures.items():
        line = record.getMessage()
        assert "failed with an error" in line and "PermissionError" in line, (kind, line)
        assert "sig=***" in line and "AccountKey=***" in line, (kind, line)
        assert SIG not in line and KEY not in line and "\n" not in line and "\r" not in line, (kind, line)
        assert "\\r\\n2026-01-01" in line, (kind, line)
