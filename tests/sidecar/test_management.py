"""Management RPCs from the SDK's client: purge, query, restart, history, instance ids."""

from __future__ import annotations

import inspect
import json
from datetime import timedelta

import pytest
from durabletask import client as dt_client
from durabletask import task

from tests.sidecar.conftest import SdkWorkerFactory

COMPLETED = dt_client.OrchestrationStatus.COMPLETED


def echo(ctx: task.ActivityContext, value: object) -> object:
    return value


def child(ctx: task.OrchestrationContext, value: object):
    return (yield ctx.call_activity(echo, input=value))


def parent(ctx: task.OrchestrationContext, value: object):
    return (yield ctx.call_sub_orchestrator(child, input=value, instance_id=f"{ctx.instance_id}-child"))


def _run(sdk_worker: SdkWorkerFactory) -> None:
    w = sdk_worker()
    w.add_orchestrator(parent)
    w.add_orchestrator(child)
    w.add_activity(echo)
    w.start()


def _finish(client: dt_client.TaskHubGrpcClient, iid: str) -> dt_client.OrchestrationState:
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == COMPLETED, state and state.failure_details
    return state


def test_purge_one_recursively_and_by_filter(
    sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    _run(sdk_worker)
    ids = [sdk_client.schedule_new_orchestration(parent, input=n, instance_id=f"p{n}") for n in range(3)]
    for iid in ids:
        _finish(sdk_client, iid)
    result = sdk_client.purge_orchestration("p0", recursive=True)
    assert (result.deleted_instance_count, result.is_complete) == (2, True)
    assert sdk_client.get_orchestration_state("p0-child") is None
    assert sdk_client.purge_orchestration("no-such-instance").deleted_instance_count == 0
    by_filter = sdk_client.purge_orchestrations_by(runtime_status=[COMPLETED])
    assert by_filter.deleted_instance_count == 4  # p1, p2 and their children
    assert sdk_client.get_all_orchestration_states() == []


def test_a_live_instance_is_not_purged(sdk_client: dt_client.TaskHubGrpcClient) -> None:
    sdk_client.schedule_new_orchestration("NotRunning", instance_id="live")
    assert sdk_client.purge_orchestration("live").deleted_instance_count == 0
    assert sdk_client.get_orchestration_state("live") is not None


def test_query_pages_and_filters(sdk_client: dt_client.TaskHubGrpcClient) -> None:
    for n in range(7):
        sdk_client.schedule_new_orchestration("Pending", instance_id=f"q-{n}", input=n)
    sdk_client.schedule_new_orchestration("Pending", instance_id="other")
    query = dt_client.OrchestrationQuery(
        instance_id_prefix="q-", max_instance_count=3, fetch_inputs_and_outputs=True
    )
    states = sdk_client.get_all_orchestration_states(query)  # three pages, followed by the client
    assert sorted(s.instance_id for s in states) == [f"q-{n}" for n in range(7)]
    assert sorted(json.loads(s.serialized_input or "null") for s in states) == list(range(7))
    pending = dt_client.OrchestrationQuery(runtime_status=[dt_client.OrchestrationStatus.PENDING])
    assert len(sdk_client.get_all_orchestration_states(pending)) == 8
    running = dt_client.OrchestrationQuery(runtime_status=[dt_client.OrchestrationStatus.RUNNING])
    assert sdk_client.get_all_orchestration_states(running) == []


def test_restart_history_and_instance_ids(
    sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    _run(sdk_worker)
    iid = sdk_client.schedule_new_orchestration(child, input="x", instance_id="r1")
    first = _finish(sdk_client, iid)
    kinds = [type(e).__name__ for e in sdk_client.get_orchestration_history(iid)]
    assert kinds[:2] == ["OrchestratorStartedEvent", "ExecutionStartedEvent"]
    assert "TaskScheduledEvent" in kinds and "TaskCompletedEvent" in kinds

    assert sdk_client.restart_orchestration(iid) == iid
    again = _finish(sdk_client, iid)
    assert again.serialized_output == first.serialized_output == '"x"'
    other = sdk_client.restart_orchestration(iid, restart_with_new_instance_id=True)
    assert other != iid
    _finish(sdk_client, other)

    page = sdk_client.list_instance_ids(runtime_status=[COMPLETED], page_size=1)
    assert len(page.items) == 1 and page.continuation_token
    rest = sdk_client.list_instance_ids(
        runtime_status=[COMPLETED], continuation_token=page.continuation_token
    )
    assert sorted([*page.items, *rest.items]) == sorted([iid, other])
    assert rest.continuation_token is None


FLAKY = {"fail": True, "runs": 0}


def flaky(ctx: task.ActivityContext, value: int) -> int:
    FLAKY["runs"] += 1
    if FLAKY["fail"]:
        raise RuntimeError("downstream is down")
    return value + 1


def steady(ctx: task.ActivityContext, value: int) -> int:
    return value * 10


def rewindable(ctx: task.OrchestrationContext, value: int):
    first = yield ctx.call_activity(steady, input=value)
    second = yield ctx.call_activity(flaky, input=first)
    return [first, second]


def test_rewind_reruns_what_failed_and_keeps_the_rest(
    sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient, settings
) -> None:
    from durablehub.client import DurableClient

    w = sdk_worker()
    w.add_orchestrator(rewindable)
    w.add_activity(flaky)
    w.add_activity(steady)
    w.start()
    iid = sdk_client.schedule_new_orchestration(rewindable, input=1)
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED
    FLAKY["fail"] = False
    sdk_client.rewind_orchestration(iid, reason="fixed")
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == COMPLETED, state.failure_details
    assert json.loads(state.serialized_output or "null") == [10, 11]
    assert FLAKY["runs"] == 2
    with DurableClient(settings) as client:  # rows are kept: the failure is a "Rewound:" row now
        reasons = [getattr(e, "reason", None) for e in client.get_orchestration_history(iid)]
        assert "Rewound: TaskFailed" in reasons and "Rewound: ExecutionCompleted" in reasons


def test_a_purge_by_filter_with_a_timeout_stops_there_and_says_it_is_incomplete(
    sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    """PurgeInstanceFilter.timeout (sent by durabletask-python from 1.10): a microsecond runs
    out before the first instance is purged; isComplete says so, and a second call finishes."""
    if "timeout" not in inspect.signature(sdk_client.purge_orchestrations_by).parameters:
        pytest.skip("this durabletask SDK sends no purge timeout")
    _run(sdk_worker)
    for n in range(2):
        _finish(sdk_client, sdk_client.schedule_new_orchestration(parent, input=n, instance_id=f"t{n}"))
    cut = sdk_client.purge_orchestrations_by(runtime_status=[COMPLETED], timeout=timedelta(microseconds=1))
    assert (cut.deleted_instance_count, cut.is_complete) == (0, False)
    assert sdk_client.get_orchestration_state("t0") is not None
    rest = sdk_client.purge_orchestrations_by(runtime_status=[COMPLETED], timeout=timedelta(minutes=5))
    assert (rest.deleted_instance_count, rest.is_complete) == (4, True)
    assert sdk_client.get_all_orchestration_states() == []
