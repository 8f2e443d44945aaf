"""Versioning on Azurite with in-process workers: REJECT writes nothing and waits for a worker
whose version fits, FAIL fails the instance, continue-as-new meets the policy again,
sub-orchestrations take the worker's default version, one worker hosts two versions, and
is_patched survives a cold replay and starts afresh after continue-as-new."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.engine import history as ev
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker

S, F = dh.VersionMatchStrategy, dh.VersionFailureStrategy
FAST = dh.WorkerOptions(max_poll_interval_seconds=0.2, abandon_delay_seconds=1)

app = dh.App()


@app.orchestrator(name="Order")
def order_any(ctx: dh.OrchestrationContext, _: Any):
    yield ctx.call_activity("echo", input="any")
    return f"any:{ctx.version}"


@app.orchestrator(name="Order", version="1.0")
def order_v1(ctx: dh.OrchestrationContext, _: Any):
    yield ctx.call_activity("echo", input="v1")
    return "v1"


@app.orchestrator(name="Order", version="2.0")
def order_v2(ctx: dh.OrchestrationContext, _: Any):
    yield ctx.call_activity("echo", input="v2")
    return "v2"


@app.orchestrator
def bump(ctx: dh.OrchestrationContext, n: int):
    yield ctx.call_activity("echo", input=n)
    if n == 0:
        ctx.continue_as_new(1, new_version="2.0")
    return ctx.version


@app.orchestrator
def parent(ctx: dh.OrchestrationContext, _: Any):
    child = yield ctx.call_sub_orchestrator("child", instance_id=f"{ctx.instance_id}-child")
    return [ctx.version, child]


@app.orchestrator
def child(ctx: dh.OrchestrationContext, _: Any) -> str | None:
    return ctx.version


@app.orchestrator
def patched(ctx: dh.OrchestrationContext, seen: list[bool]):
    taken = ctx.is_patched("fix")
    if not seen:
        yield ctx.wait_for_external_event("go")
    assert ctx.is_patched("fix") == taken  # remembered for the execution
    seen = [*seen, taken]
    if len(seen) < 2:
        ctx.continue_as_new(seen)
        return None
    return seen


@app.activity
def echo(ctx: dh.ActivityContext, value: Any) -> Any:
    return value


def _policy(version: str | None, strategy: S, failure: F = F.REJECT, default: str | None = None) -> Any:
    return dh.VersioningOptions(
        version=version, default_version=default, match_strategy=strategy, failure_strategy=failure
    )


def _until(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def test_reject_writes_nothing_until_a_worker_whose_version_fits_runs_it(
    azurite: Any, hub_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One partition: the rejected instance and the others share a control queue. A low poison
    # limit: a rejection is no failure, however often it happens, whichever worker sees it next.
    options = FAST.model_copy(update={"max_dequeue_count": 2})
    settings = TaskHubSettings(
        task_hub=hub_name, connection_string=azurite.connection_string, partition_count=1
    )
    with DurableClient(settings) as client:
        with caplog.at_level(logging.DEBUG, logger="durablehub.worker"):
            worker = Worker(app, settings, options=options, versioning=_policy("1.0", S.STRICT))
            with worker:
                newer = client.schedule_new_orchestration("Order", version="2.0", instance_id="newer")
                older = client.schedule_new_orchestration("Order", version="1.0", instance_id="older")
                assert client.wait_for_orchestration_completion(older, timeout=60).get_output() == "v1"
                gate = worker._orchestrations.versions  # type: ignore[union-attr]
                _until(lambda: gate._rejected.get(newer, (None, 0))[1] >= 3, "three rejections")
        warnings = [
            r
            for r in caplog.records
            if r.levelname == "WARNING" and "not running instance 'newer'" in r.getMessage()
        ]
        assert len(warnings) == 1  # said once, not on every retry
        assert "'2.0' does not match the worker version '1.0'" in warnings[0].getMessage()
        with TaskHub(settings) as hub:
            assert hub.history.load(newer).events == ()  # nothing written
        state = client.get_orchestration_state(newer)
        assert state is not None and state.runtime_status is dh.OrchestrationStatus.PENDING
        assert state.version == "2.0"

        with Worker(app, settings, options=options, versioning=_policy("2.0", S.STRICT)):
            done = client.wait_for_orchestration_completion(newer, timeout=60)
        assert done.runtime_status is dh.OrchestrationStatus.COMPLETED and done.get_output() == "v2"


def test_fail_strategy_and_continue_as_new_meet_the_policy(
    settings: TaskHubSettings, client: DurableClient, caplog: pytest.LogCaptureFixture
) -> None:
    policy = _policy("1.0", S.CURRENT_OR_OLDER, F.FAIL)
    with Worker(app, settings, options=FAST, versioning=policy):
        newer = client.schedule_new_orchestration("Order", version="2.0")
        older = client.schedule_new_orchestration("Order", version="0.9")  # no code: the fallback
        bumped = client.schedule_new_orchestration("bump", input=0, version="1.0")
        states = [client.wait_for_orchestration_completion(i, timeout=60) for i in (newer, older, bumped)]
        with caplog.at_level(logging.WARNING, logger="durablehub.worker"):
            client.rewind_orchestration(newer)  # the policy holds for a rewind too
            _until(lambda: f"not rewinding {newer!r}" in caplog.text, "the rewind refused", limit=20)

        def failed_again() -> bool:  # the row is put back after the refusal is logged
            again = client.get_orchestration_state(newer)
            return again is not None and again.runtime_status is dh.OrchestrationStatus.FAILED

        _until(failed_again, "the Instances row back to Failed", limit=20)
    failed, fallback, continued = states
    assert failed.runtime_status is dh.OrchestrationStatus.FAILED
    details = failed.failure_details
    assert details is not None and details.error_type == "VersionMismatch" and details.is_non_retriable
    assert "'2.0' is newer than the worker version '1.0'" in details.message
    history = client.get_orchestration_history(newer)
    assert not [e for e in history if isinstance(e, ev.TaskScheduled)]  # its code never ran
    assert fallback.get_output() == "any:0.9"
    # The first generation ran at 1.0; the next one, at 2.0, failed before its code ran.
    assert continued.runtime_status is dh.OrchestrationStatus.FAILED and continued.version == "2.0"
    assert continued.failure_details is not None and continued.failure_details.error_type == "VersionMismatch"


def test_sub_orchestration_takes_the_worker_default_version(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    with Worker(app, settings, options=FAST, versioning=_policy(None, S.NONE, default="2.0")):
        iid = client.schedule_new_orchestration("parent", version="1.0")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.get_output() == ["1.0", "2.0"]
    child_state = client.get_orchestration_state(f"{iid}-child")
    assert child_state is not None and child_state.version == "2.0"
    created = [
        e for e in client.get_orchestration_history(iid) if isinstance(e, ev.SubOrchestrationInstanceCreated)
    ]
    assert [e.version for e in created] == ["2.0"]


def test_two_versions_in_one_worker_and_queries_by_version(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    strict_app = dh.App()  # versioned code only: an unknown version meets the failure strategy
    strict_app.add_orchestrator(order_v1, name="Order", version="1.0")
    strict_app.add_orchestrator(order_v2, name="Order", version="2.0")
    strict_app.add_activity(echo)
    with Worker(strict_app, settings, options=FAST, versioning=_policy(None, S.NONE, F.FAIL)):
        ids = {
            v: client.schedule_new_orchestration("Order", version=v, instance_id=f"o{v}")
            for v in ("1.0", "2.0", "3.0")
        }
        states = {v: client.wait_for_orchestration_completion(i, timeout=60) for v, i in ids.items()}
    assert states["1.0"].get_output() == "v1" and states["2.0"].get_output() == "v2"
    unknown = states["3.0"].failure_details
    assert unknown is not None and unknown.error_type == "VersionMismatch"
    assert "no code for version '3.0'" in unknown.message
    found = client.get_all_orchestration_states(dh.OrchestrationQuery(name="Order", versions=["1.0", "3.0"]))
    assert sorted(s.instance_id for s in found) == ["o1.0", "o3.0"]
    assert {s.version for s in found} == {"1.0", "3.0"}
    assert client.get_all_orchestration_states(dh.OrchestrationQuery(name="Nope")) == []


def test_is_patched_survives_a_cold_replay_and_restarts_with_continue_as_new(
    settings: TaskHubSettings, client: DurableClient
) -> None:
    def recorded() -> list[ev.HistoryEvent]:
        return [e for e in client.get_orchestration_history(iid) if isinstance(e, ev.GenericEvent)]

    with Worker(app, settings, options=FAST):
        iid = client.schedule_new_orchestration("patched", input=[])
        _until(lambda: len(recorded()) == 1, "the patch recorded")
    with Worker(app, settings, options=FAST):  # a new worker: no cache, the history is replayed
        client.raise_orchestration_event(iid, "go")
        state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.get_output() == [True, True]
    assert len(recorded()) == 1  # the second generation's own record
