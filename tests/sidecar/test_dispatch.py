"""WorkDispatcher: work goes to connected workers and comes back when they go away (no storage)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("durabletask")

from durablehub.sidecar import dispatch  # noqa: E402
from durablehub.sidecar.dispatch import StaleCompletionError, WorkDispatcher  # noqa: E402
from durablehub.sidecar.protocol import pb  # noqa: E402


def _activity(name: str, task_id: int = 0) -> pb.WorkItem:
    return pb.WorkItem(activityRequest=pb.ActivityRequest(name=name, taskId=task_id))


def _request(*, activities: tuple[str, ...] = (), max_activities: int = 0) -> pb.GetWorkItemsRequest:
    request = pb.GetWorkItemsRequest(maxConcurrentActivityWorkItems=max_activities)
    for name in activities:
        request.workItemFilters.activities.add(name=name)
    return request


async def _next(stream: dispatch.WorkerStream) -> pb.WorkItem:
    """The item the stream's RPC would write next (as ``GetWorkItems`` takes it)."""
    item = await stream.next(timeout=5)
    assert item is not None, "no work item came"
    return item


async def test_work_waits_for_a_worker_and_is_answered_by_token() -> None:
    d = WorkDispatcher()
    pending = asyncio.create_task(d.submit("activity", "hello", None, _activity("hello")))
    await asyncio.sleep(0)
    assert d.waiting == 1
    stream = d.connect(_request())
    item = await _next(stream)
    assert item.activityRequest.name == "hello" and item.completionToken
    d.complete(item.completionToken, "answer")
    assert await pending == "answer"


async def test_a_disconnected_workers_work_goes_to_another_and_its_token_goes_stale() -> None:
    d = WorkDispatcher()
    first = d.connect(_request())
    pending = asyncio.create_task(d.submit("activity", "slow", None, _activity("slow")))
    old = await _next(first)
    second = d.connect(_request())
    d.disconnect(first)
    new = await _next(second)
    assert new.activityRequest.name == "slow" and new.completionToken != old.completionToken
    with pytest.raises(StaleCompletionError):
        d.complete(old.completionToken, "late answer from the dead worker")
    d.complete(new.completionToken, "answer")
    d.complete(new.completionToken, "the same answer again")  # repeated: harmless
    assert await pending == "answer"


async def test_work_of_a_worker_that_left_waits_for_the_next_one() -> None:
    d = WorkDispatcher()
    only = d.connect(_request())
    pending = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    await _next(only)
    d.disconnect(only)
    assert d.waiting == 1 and d.connected == 0
    later = d.connect(_request())
    d.complete((await _next(later)).completionToken, 7)
    assert await pending == 7


async def test_unknown_tokens_are_refused() -> None:
    d = WorkDispatcher()
    with pytest.raises(StaleCompletionError):
        d.complete("never-issued", None)
    with pytest.raises(StaleCompletionError):
        d.abandon("never-issued")


async def test_withdrawn_work_is_not_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    d = WorkDispatcher()
    stream = d.connect(_request())
    pending = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    item = await _next(stream)
    pending.cancel()  # the runtime gave up on it (its partition stopped)
    with pytest.raises(asyncio.CancelledError):
        await pending
    with pytest.raises(StaleCompletionError):
        d.complete(item.completionToken, "too late")


async def test_abandoned_work_is_offered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "_ABANDON_DELAY", 0.01)
    d = WorkDispatcher()
    stream = d.connect(_request())
    pending = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    first = await _next(stream)
    d.abandon(first.completionToken)
    again = await _next(stream)
    assert again.completionToken != first.completionToken
    d.complete(again.completionToken, "ok")
    assert await pending == "ok"


async def test_filters_and_limits_choose_the_worker() -> None:
    d = WorkDispatcher()
    only_b = d.connect(_request(activities=("b",)))
    one_at_a_time = d.connect(_request(max_activities=1))
    a1 = asyncio.create_task(d.submit("activity", "a", None, _activity("a", 1)))
    a2 = asyncio.create_task(d.submit("activity", "a", None, _activity("a", 2)))
    b = asyncio.create_task(d.submit("activity", "b", None, _activity("b", 3)))
    first = await _next(one_at_a_time)
    assert first.activityRequest.taskId == 1
    assert (await _next(only_b)).activityRequest.taskId == 3  # "a" is not for it
    assert d.waiting == 1  # a2: the other worker is at its limit
    d.complete(first.completionToken, "a1")
    second = await _next(one_at_a_time)
    assert second.activityRequest.taskId == 2
    d.complete(second.completionToken, "a2")
    assert (await a1, await a2) == ("a1", "a2")
    b.cancel()


async def test_closing_cancels_the_work_nobody_can_answer_any_more() -> None:
    d = WorkDispatcher()
    waiting = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    stream = d.connect(_request())
    given = asyncio.create_task(d.submit("activity", "b", None, _activity("b")))
    item = await _next(stream)
    d.disconnect(stream)
    d.close()
    for task in (waiting, given):
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(StaleCompletionError):
        d.complete(item.completionToken, "too late")
    with pytest.raises(asyncio.CancelledError):  # and so is work submitted after it
        await d.submit("activity", "c", None, _activity("c"))


def _orchestration(instance_id: str) -> pb.WorkItem:
    return pb.WorkItem(orchestratorRequest=pb.OrchestratorRequest(instanceId=instance_id))


async def test_a_full_stream_queue_is_given_nothing_more() -> None:
    d = WorkDispatcher(queue_limit=2)
    unread = d.connect(_request())  # nothing takes its items off its queue
    work = [asyncio.create_task(d.submit("activity", "a", None, _activity("a", i))) for i in range(3)]
    await asyncio.sleep(0)
    assert unread.items.qsize() == 2 and d.waiting == 1
    reader = d.connect(_request())
    assert (await _next(reader)).activityRequest.taskId == 2
    for task in work:
        task.cancel()


async def test_a_stream_that_answers_nothing_past_the_deadline_is_dropped() -> None:
    d = WorkDispatcher(item_timeout=0.2)
    silent = d.connect(_request())
    ended: list[int] = []
    silent.on_drop = lambda: ended.append(silent.id)
    pending = asyncio.create_task(d.submit("orchestration", "o", None, _orchestration("i1")))
    stale = await _next(silent)
    reader = d.connect(_request())
    item = await _next(reader)  # after the deadline, from the dropped stream
    assert ended == [silent.id] and silent.dropped and d.connected == 1
    with pytest.raises(StaleCompletionError):
        d.complete(stale.completionToken, "late")
    d.complete(item.completionToken, "ok")
    assert await pending == "ok"


async def test_a_stream_that_answers_other_work_keeps_a_long_item() -> None:
    d = WorkDispatcher(item_timeout=0.2)
    busy = d.connect(_request())
    long = asyncio.create_task(d.submit("orchestration", "o", None, _orchestration("long")))
    first = await _next(busy)
    short = asyncio.create_task(d.submit("orchestration", "o", None, _orchestration("short")))
    d.complete((await _next(busy)).completionToken, "short")  # it answers: it is reading
    await asyncio.sleep(0.4)
    assert d.connected == 1 and busy.dropped is None
    d.complete(first.completionToken, "long")
    assert (await long, await short) == ("long", "short")


async def test_a_busy_stream_with_older_work_keeps_a_late_item() -> None:
    """Its pool is full of older work (a long activity, which has no deadline): the late item
    waits in the SDK, and the stream is not silent."""
    d = WorkDispatcher(item_timeout=0.2)
    busy = d.connect(_request())
    older = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    first = await _next(busy)
    await asyncio.sleep(0.1)
    late = asyncio.create_task(d.submit("orchestration", "o", None, _orchestration("late")))
    second = await _next(busy)
    await asyncio.sleep(0.6)  # past both deadlines, more than once, with nothing answered
    assert d.connected == 1 and busy.dropped is None
    d.complete(first.completionToken, "older")
    d.complete(second.completionToken, "late")
    assert (await older, await late) == ("older", "late")


async def test_a_stream_whose_rpc_takes_nothing_is_dropped_though_busy() -> None:
    """Items left on its queue past the deadline: its writes stalled, whatever else it does."""
    d = WorkDispatcher(item_timeout=0.2)
    stalled = d.connect(_request())
    older = asyncio.create_task(d.submit("activity", "a", None, _activity("a")))
    await _next(stalled)  # taken, never answered: busy with older work
    late = asyncio.create_task(d.submit("orchestration", "o", None, _orchestration("late")))
    await asyncio.sleep(0.4)  # "late" is still on its queue: the RPC stopped taking items
    assert stalled.dropped is not None and "has not taken" in stalled.dropped and d.connected == 0
    with pytest.raises(dispatch.StreamDropped, match="has not taken"):
        await stalled.next(timeout=1)  # the RPC wakes and ends, naming why
    for task in (older, late):
        task.cancel()


async def test_a_work_item_too_large_for_a_worker_is_refused_naming_its_size() -> None:
    d = WorkDispatcher(max_item_bytes=1000)
    d.connect(_request())
    big = pb.WorkItem(activityRequest=pb.ActivityRequest(name="a", input={"value": "x" * 2000}))
    with pytest.raises(dispatch.WorkItemTooLarge, match=r"takes \d+ bytes.*\(1000 bytes\)"):
        await d.submit("activity", "a", None, big)
    assert d.waiting == 0
