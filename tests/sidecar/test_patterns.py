"""The orchestration patterns, written for the unmodified durabletask SDK, run on the sidecar
(real gRPC on loopback, Azurite storage); the hub they write is an ordinary durablehub hub."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from durabletask import client as dt_client
from durabletask import task

from durablehub.client import DurableClient
from durablehub.models import OrchestrationStatus
from durablehub.settings import TaskHubSettings
from tests.sidecar.conftest import SdkWorkerFactory

COMPLETED = dt_client.OrchestrationStatus.COMPLETED


def hello(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello {name}!"


def double(ctx: task.ActivityContext, n: int) -> int:
    return 2 * n


def explode(ctx: task.ActivityContext, what: str) -> None:
    raise ValueError(f"cannot {what}")


def chain(ctx: task.OrchestrationContext, _: object):
    result1 = yield ctx.call_activity(hello, input="Tokyo")
    result2 = yield ctx.call_activity(hello, input="Seattle")
    result3 = yield ctx.call_activity(hello, input="London")
    return [result1, result2, result3]


def fan_out(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_activity(double, input=i) for i in range(count)])
    return sum(results)


def timer_then_event(ctx: task.OrchestrationContext, _: object):
    yield ctx.create_timer(timedelta(seconds=1))
    approval = ctx.wait_for_external_event("Approval")
    timeout = ctx.create_timer(timedelta(hours=1))
    winner = yield task.when_any([approval, timeout])
    return {"approved": winner == approval, "data": approval.get_result() if winner == approval else None}


def parent(ctx: task.OrchestrationContext, count: int):
    children = [ctx.call_sub_orchestrator(fan_out, input=n) for n in range(1, count + 1)]
    return (yield task.when_all(children))


def fails_then_compensates(ctx: task.OrchestrationContext, _: object):
    try:
        yield ctx.call_activity(explode, input="charge")
    except task.TaskFailedError as exc:
        caught = exc.details.message
    else:
        caught = None
    yield ctx.call_activity(explode, input="refund")  # not caught: the instance fails
    return caught


def counter(ctx: task.OrchestrationContext, n: int):
    yield ctx.create_timer(timedelta(milliseconds=10))
    if n < 3:
        ctx.continue_as_new(n + 1)
        return None
    return n


def waits(ctx: task.OrchestrationContext, _: object):
    value = yield ctx.wait_for_external_event("Go")
    return value


@pytest.fixture
def worker(sdk_worker: SdkWorkerFactory):
    w = sdk_worker()
    for orchestrator in (chain, fan_out, timer_then_event, parent, fails_then_compensates, counter, waits):
        w.add_orchestrator(orchestrator)
    for activity in (hello, double, explode):
        w.add_activity(activity)
    w.start()
    return w


def _completed(client: dt_client.TaskHubGrpcClient, iid: str) -> object:
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None
    assert state.runtime_status == COMPLETED, state.failure_details
    return json.loads(state.serialized_output or "null")


def test_function_chaining(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(chain)
    assert _completed(sdk_client, iid) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_out_fan_in(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(fan_out, input=30)
    assert _completed(sdk_client, iid) == 2 * sum(range(30))


def test_timer_and_external_event(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(timer_then_event)
    sdk_client.raise_orchestration_event(iid, "Approval", data={"by": "ops"})  # buffered until awaited
    assert _completed(sdk_client, iid) == {"approved": True, "data": {"by": "ops"}}


def test_sub_orchestrations(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(parent, input=3)
    assert _completed(sdk_client, iid) == [0, 2, 6]  # 2 * sum(range(n))


def test_activity_failures_are_caught_or_fail_the_instance(
    worker: object, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    iid = sdk_client.schedule_new_orchestration(fails_then_compensates)
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "durabletask.task.TaskFailedError"
    assert "cannot refund" in state.failure_details.message


def test_continue_as_new(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(counter, input=0)
    assert _completed(sdk_client, iid) == 3


def test_suspend_resume_and_terminate(worker: object, sdk_client: dt_client.TaskHubGrpcClient) -> None:
    iid = sdk_client.schedule_new_orchestration(waits)
    sdk_client.wait_for_orchestration_start(iid, timeout=30)
    sdk_client.suspend_orchestration(iid)
    sdk_client.raise_orchestration_event(iid, "Go", data=1)  # kept while suspended
    _wait_for_status(sdk_client, iid, dt_client.OrchestrationStatus.SUSPENDED)
    sdk_client.resume_orchestration(iid)
    assert _completed(sdk_client, iid) == 1

    other = sdk_client.schedule_new_orchestration(waits)
    sdk_client.wait_for_orchestration_start(other, timeout=30)
    sdk_client.terminate_orchestration(other, output="enough")
    state = sdk_client.wait_for_orchestration_completion(other, timeout=60)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.TERMINATED
    assert json.loads(state.serialized_output or "null") == "enough"


def _wait_for_status(
    client: dt_client.TaskHubGrpcClient, iid: str, status: dt_client.OrchestrationStatus
) -> None:
    done = threading.Event()
    for _ in range(600):
        state = client.get_orchestration_state(iid)
        if state is not None and state.runtime_status == status:
            return
        done.wait(0.05)
    raise AssertionError(f"{iid} never became {status}")


def test_a_hub_written_through_the_sidecar_is_a_durablehub_hub(
    worker: object, sdk_client: dt_client.TaskHubGrpcClient, settings: TaskHubSettings
) -> None:
    iid = sdk_client.schedule_new_orchestration(chain, instance_id="sidecar-chain", tags={"team": "a"})
    _completed(sdk_client, iid)
    with DurableClient(settings) as client:
        state = client.get_orchestration_state(iid)
        assert state is not None
        assert (state.name, state.runtime_status, state.tags) == (
            "chain",
            OrchestrationStatus.COMPLETED,
            {"team": "a"},
        )
        assert state.get_output() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        kinds = [type(e).__name__ for e in client.get_orchestration_history(iid)]
        assert kinds.count("TaskScheduled") == kinds.count("TaskCompleted") == 3
        assert kinds[-2:] == ["ExecutionCompleted", "OrchestratorCompleted"]
        assert client.purge_orchestration(iid).deleted_instance_count == 1
    assert sdk_client.get_orchestration_state(iid) is None


RETRY = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3)
RUNS = {"child": 0, "activity": 0}


def always_fails(ctx: task.ActivityContext, _: object) -> None:
    RUNS["activity"] += 1
    raise RuntimeError("Kah-BOOOOM!!!")


def retried_child(ctx: task.OrchestrationContext, _: object):
    if not ctx.is_replaying:
        RUNS["child"] += 1
    yield ctx.call_activity(always_fails, retry_policy=RETRY)


def retrying_parent(ctx: task.OrchestrationContext, _: object):
    yield ctx.call_sub_orchestrator(retried_child, retry_policy=RETRY)


def test_retry_policies_retry_under_the_same_id(
    sdk_worker: SdkWorkerFactory, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    """The SDK schedules each retry under the id (and the child's instance id) of the call it
    retries: every attempt runs (3 children x 3 activity runs), none is taken for a duplicate."""
    w = sdk_worker()
    w.add_orchestrator(retrying_parent)
    w.add_orchestrator(retried_child)
    w.add_activity(always_fails)
    w.start()
    iid = sdk_client.schedule_new_orchestration(retrying_parent)
    state = sdk_client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED
    assert state.failure_details is not None and state.failure_details.message.endswith("Kah-BOOOOM!!!")
    assert RUNS == {"child": 3, "activity": 9}
