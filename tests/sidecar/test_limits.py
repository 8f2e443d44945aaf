"""The sidecar's bounds (``SidecarLimits``): shared, backed-off waits with a ceiling, call caps
that never starve SDK workers, a stream that stops reading, pages and reply sizes. A real
sidecar on Azurite, the durabletask SDK's worker and client, and raw gRPC calls."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import task
from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from google.protobuf import empty_pb2, wrappers_pb2

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.sidecar import Sidecar, SidecarLimits
from durablehub.testing.request_log import AzuriteRequestLog
from tests.conftest import StorageEmulator
from tests.sidecar.conftest import FAST

COMPLETED = dt_client.OrchestrationStatus.COMPLETED


def _sidecar(settings: TaskHubSettings, **limits: Any) -> Sidecar:
    return Sidecar(settings, port=0, options=FAST, limits=SidecarLimits(**limits))


@pytest.fixture
def channel(address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(address) as ch:
        yield ch


def _stub(address: str) -> tuple[grpc.Channel, Any]:
    ch = grpc.insecure_channel(address)
    return ch, stubs.TaskHubSidecarServiceStub(ch)


def double(ctx: task.ActivityContext, n: int) -> int:
    return 2 * n


def doubler(ctx: task.OrchestrationContext, n: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(double, input=n))


def _worker(address: str) -> dt_worker.TaskHubGrpcWorker:
    w = dt_worker.TaskHubGrpcWorker(host_address=address)
    w.add_orchestrator(doubler)
    w.add_activity(double)
    return w


def _table_reads(log: AzuriteRequestLog, mark: int) -> int:
    counts = log.since(mark)
    return sum(n for op, n in counts.items() if op in ("table.get", "table.query"))


# ------------------------------------------------------------------------------ waits


def test_waits_on_missing_ids_share_one_backed_off_poll(
    azurite: StorageEmulator, settings: TaskHubSettings, address: str, channel: grpc.Channel
) -> None:
    """40 waits on 4 ids that do not exist read storage per id, not per wait, and back off."""
    assert azurite.process is not None and azurite.process.log_path is not None
    log = AzuriteRequestLog(azurite.process.log_path, settings.names)
    stub = stubs.TaskHubSidecarServiceStub(channel)
    mark = log.mark()
    calls = [
        stub.WaitForInstanceCompletion.future(pb.GetInstanceRequest(instanceId=f"nobody-{i % 4}"), timeout=6)
        for i in range(40)
    ]
    answers = [call.result(timeout=30) for call in calls]
    assert all(not answer.exists for answer in answers)  # at the caller's deadline: not found
    time.sleep(1)  # Azurite's log reaches the file a moment after its answers
    reads = _table_reads(log, mark)
    # 4 ids, each read at 0, 0.05, 0.15, 0.35, 0.75, 1.55, 3.15 s (doubling to 10 s): 28.
    assert reads <= 40, f"{reads} table reads for 40 waits on 4 missing ids in 6 s"


def test_a_wait_without_a_deadline_meets_the_sidecars_ceiling(settings: TaskHubSettings) -> None:
    with _sidecar(settings, max_wait_seconds=1.5) as sidecar:
        ch, stub = _stub(f"127.0.0.1:{sidecar.port}")
        with ch:
            began = time.monotonic()
            call = stub.WaitForInstanceCompletion.future(pb.GetInstanceRequest(instanceId="never"))
            try:
                with pytest.raises(grpc.RpcError) as info:
                    call.result(timeout=10)
            finally:
                call.cancel()
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value
            assert "ceiling" in (info.value.details() or "")
            assert time.monotonic() - began < 6


def test_a_wait_is_answered_when_the_instance_completes(
    sdk_worker: Any, sdk_client: dt_client.TaskHubGrpcClient
) -> None:
    """Many waits on one instance, on the shared poll, all get its result."""
    w = sdk_worker()
    w.add_orchestrator(doubler)
    w.add_activity(double)
    w.start()
    iid = sdk_client.schedule_new_orchestration(doubler, input=21)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        states = list(
            pool.map(lambda _: sdk_client.wait_for_orchestration_completion(iid, timeout=60), range(8))
        )
    assert all(
        s is not None and s.runtime_status == COMPLETED and s.serialized_output == "42" for s in states
    )


# ------------------------------------------------------------------------------- caps


def test_caps_refuse_beyond_their_limit_and_never_starve_workers(settings: TaskHubSettings) -> None:
    with _sidecar(settings, max_waits=2, max_streams=1, max_unary_calls=2) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        ch, stub = _stub(address)
        worker = _worker(address)
        client = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            worker.start()  # the one stream allowed
            deadline = time.monotonic() + 20
            while sidecar.workers_connected < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            waits = [
                stub.WaitForInstanceCompletion.future(pb.GetInstanceRequest(instanceId=f"w{i}"))
                for i in range(2)
            ]
            time.sleep(0.5)
            with pytest.raises(grpc.RpcError) as third:
                stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId="w3"), timeout=10)
            assert third.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, third.value
            with pytest.raises(grpc.RpcError) as stream:
                next(iter(stub.GetWorkItems(pb.GetWorkItemsRequest(), timeout=10)))
            assert stream.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, stream.value
            # A flood of client calls: some refused, and the worker's answers still go through.
            iid = client.schedule_new_orchestration(doubler, input=4)
            flood = [stub.GetInstance.future(pb.GetInstanceRequest(instanceId=iid)) for _ in range(60)]
            codes = []
            for call in flood:
                try:
                    call.result(timeout=30)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())
            assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.OK in codes
            assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert stub.Hello(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()
            for w in waits:  # the waits are still open: caps count, they do not end calls
                assert not w.done()
            state = None  # polled: both waits allowed are taken
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = client.get_orchestration_state(iid)
                if state is not None and state.runtime_status == COMPLETED:
                    break
                time.sleep(0.2)
            assert state is not None and state.runtime_status == COMPLETED and state.serialized_output == "8"
            for w in waits:
                w.cancel()
        finally:
            worker.stop()
            client.close()
            ch.close()


# ------------------------------------------------------------ a stream that stops reading


def test_a_stream_that_stops_reading_loses_its_work_to_a_reading_one(settings: TaskHubSettings) -> None:
    with _sidecar(settings, work_item_timeout_seconds=2) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        ch, stub = _stub(address)
        silent = stub.GetWorkItems(pb.GetWorkItemsRequest())  # connects, and is never read
        deadline = time.monotonic() + 20
        while sidecar.workers_connected < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = _worker(address)
        client = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            worker.start()
            while sidecar.workers_connected < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sidecar.workers_connected == 2
            began = time.monotonic()
            ids = [client.schedule_new_orchestration(doubler, input=i) for i in range(6)]
            for i, iid in enumerate(ids):
                state = client.wait_for_orchestration_completion(
                    iid, timeout=max(began + 40 - time.monotonic(), 1)
                )
                assert (
                    state is not None
                    and state.runtime_status == COMPLETED
                    and state.serialized_output == str(2 * i)
                )
            assert sidecar.workers_connected == 1  # the silent stream was dropped
        finally:
            silent.cancel()
            worker.stop()
            client.close()
            ch.close()


def slow(ctx: task.ActivityContext, n: int) -> int:
    time.sleep(6)
    return n


def fan(ctx: task.OrchestrationContext, n: int):  # type: ignore[no-untyped-def]
    results = yield task.when_all([ctx.call_activity(slow, input=i) for i in range(n)])
    return sum(results)


def quick(ctx: task.OrchestrationContext, _: Any) -> str:
    return "quick"


def test_a_busy_worker_is_not_taken_for_one_that_stopped_reading(
    settings: TaskHubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK runs orchestrations and activities on one thread pool: with every thread in a
    long activity, an orchestration work item waits past the deadline in the SDK's own queue.
    The stream is busy with older work, not silent: it keeps its work and is not dropped."""
    caplog.set_level(logging.WARNING, logger="durablehub.sidecar")
    with _sidecar(settings, work_item_timeout_seconds=2) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        pool_of_two = dt_worker.ConcurrencyOptions(maximum_thread_pool_workers=2)
        worker = dt_worker.TaskHubGrpcWorker(host_address=address, concurrency_options=pool_of_two)
        for orchestrator in (fan, quick):
            worker.add_orchestrator(orchestrator)
        worker.add_activity(slow)
        client = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            worker.start()
            fanned = client.schedule_new_orchestration(fan, input=2)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # both pool threads are now in slow activities
                state = client.get_orchestration_state(fanned)
                if state is not None and state.runtime_status == dt_client.OrchestrationStatus.RUNNING:
                    break
                time.sleep(0.1)
            time.sleep(1)
            queued = client.schedule_new_orchestration(quick)
            for iid, output in ((queued, '"quick"'), (fanned, "1")):
                state = client.wait_for_orchestration_completion(iid, timeout=40)
                assert state is not None and state.runtime_status == COMPLETED, state
                assert state.serialized_output == output
            dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
            assert not dropped, dropped
        finally:
            worker.stop()
            client.close()


def test_a_dropped_stream_ends_with_unavailable_at_once(settings: TaskHubSettings) -> None:
    """A stream that reads its work but answers none of it is dropped, and its caller hears
    it: UNAVAILABLE, on which the SDK reconnects at once (not after its 120 s silence)."""
    with _sidecar(settings, work_item_timeout_seconds=1) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        ch, stub = _stub(address)
        stream = stub.GetWorkItems(pb.GetWorkItemsRequest())
        ended: concurrent.futures.Future[grpc.RpcError | None] = concurrent.futures.Future()

        def read() -> None:
            try:
                for _ in stream:
                    pass
                ended.set_result(None)
            except grpc.RpcError as exc:
                ended.set_result(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        client = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            deadline = time.monotonic() + 20
            while sidecar.workers_connected < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            client.schedule_new_orchestration("Unanswered", instance_id="unanswered")
            try:
                error = ended.result(timeout=15)
            except concurrent.futures.TimeoutError:
                pytest.fail("the dropped stream is still open after 15 s")
            assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert "answered none of its work" in (error.details() or "")
        finally:
            stream.cancel()
            reader.join(timeout=5)
            client.close()
            ch.close()


def echo(ctx: task.OrchestrationContext, text: str) -> int:
    return len(text)


def test_a_work_item_too_large_for_a_worker_fails_its_instance_once(
    settings: TaskHubSettings, sdk_worker: Any, sdk_client: dt_client.TaskHubGrpcClient, sidecar: Sidecar
) -> None:
    """An episode whose history is over the 4 MiB an SDK worker's channel receives is never
    given (it would end the stream of every worker it went to): its instance fails, naming the
    size and the limit, and the worker keeps its stream."""
    w = sdk_worker()
    w.add_orchestrator(echo)
    w.add_orchestrator(doubler)
    w.add_activity(double)
    w.start()
    big = "x" * (4 * 1024 * 1024 + 1000)
    with DurableClient(settings) as client:  # an SDK client may not send that much: durablehub's may
        iid = client.schedule_new_orchestration("echo", input=big)
    state = sdk_client.wait_for_orchestration_completion(iid, fetch_payloads=False, timeout=30)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED, state
    assert state.failure_details is not None
    assert "more than an SDK worker may receive" in state.failure_details.message, state.failure_details
    small = sdk_client.schedule_new_orchestration(doubler, input=5)
    done = sdk_client.wait_for_orchestration_completion(small, timeout=30)
    assert done is not None and done.runtime_status == COMPLETED and done.serialized_output == "10"
    assert sidecar.workers_connected == 1


# ------------------------------------------------------------------ pages and sizes


def test_list_instance_ids_pages_are_capped(settings: TaskHubSettings) -> None:
    with _sidecar(settings, default_page_size=1, max_page_size=2) as sidecar:
        address = f"127.0.0.1:{sidecar.port}"
        ch, stub = _stub(address)
        worker = _worker(address)
        client = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            worker.start()
            ids = [client.schedule_new_orchestration(doubler, input=i) for i in range(3)]
            for iid in ids:
                state = client.wait_for_orchestration_completion(iid, timeout=60)
                assert state is not None and state.runtime_status == COMPLETED
            assert len(stub.ListInstanceIds(pb.ListInstanceIdsRequest(), timeout=10).instanceIds) == 1
            seen: list[str] = []
            key = None
            for _ in range(3):
                request = pb.ListInstanceIdsRequest(pageSize=5000)
                if key is not None:
                    request.lastInstanceKey.value = key
                page = stub.ListInstanceIds(request, timeout=10)
                assert len(page.instanceIds) <= 2
                seen.extend(page.instanceIds)
                if not page.HasField("lastInstanceKey"):
                    break
                key = page.lastInstanceKey.value
            assert sorted(seen) == sorted(ids)
        finally:
            worker.stop()
            client.close()
            ch.close()


def test_a_query_page_is_trimmed_to_the_reply_size_limit(settings: TaskHubSettings) -> None:
    with _sidecar(settings, max_reply_bytes=64 * 1024) as sidecar:
        ch, stub = _stub(f"127.0.0.1:{sidecar.port}")
        with ch:
            payload = '"' + "x" * 20_000 + '"'
            ids = sorted(
                stub.StartInstance(
                    pb.CreateInstanceRequest(
                        name="Big", instanceId=f"big-{i}", input=wrappers_pb2.StringValue(value=payload)
                    ),
                    timeout=10,
                ).instanceId
                for i in range(5)
            )
            seen: list[str] = []
            token = None
            for _ in range(5):
                query = pb.InstanceQuery(maxInstanceCount=100, fetchInputsAndOutputs=True)
                if token is not None:
                    query.continuationToken.value = token
                page = stub.QueryInstances(pb.QueryInstancesRequest(query=query), timeout=10)
                assert page.ByteSize() <= 64 * 1024, page.ByteSize()
                seen.extend(s.instanceId for s in page.orchestrationState)
                if not page.HasField("continuationToken"):
                    break
                token = page.continuationToken.value
            assert sorted(seen) == ids
