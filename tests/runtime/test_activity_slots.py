"""An activity's slot is free once its code has run: reporting its result takes none."""

from __future__ import annotations

import asyncio

import pytest

from durablehub.engine import history as ev
from durablehub.runtime.activities import ActivityRunner
from durablehub.runtime.hosting import InProcessCode
from durablehub.runtime.options import WorkerOptions
from durablehub.taskhub import envelope
from durablehub.taskhub.aio.hub import AsyncTaskHub
from tests.runtime.apps import app

pytestmark = pytest.mark.azurite


def work_item(instance_id: str) -> envelope.MessageData:
    return envelope.MessageData(
        task_message=envelope.TaskMessage(
            event=ev.TaskScheduled(event_id=0, name="echo", input='"x"'),
            orchestration_instance=ev.OrchestrationInstance(instance_id=instance_id, execution_id="e"),
        )
    )


async def test_an_activity_reporting_its_result_leaves_its_slot_to_the_next_handover(
    async_hub: AsyncTaskHub,
) -> None:
    """The next work item this process schedules is handed over in memory (no send to the
    shared queue, no receive) while the previous one's answer is still on its way."""
    options = WorkerOptions(max_concurrent_activities=1)
    reporting, answered = asyncio.Event(), asyncio.Event()
    reports: list[str] = []

    async def report(instance_id: str, message: envelope.MessageData) -> None:
        reports.append(instance_id)
        reporting.set()
        await answered.wait()

    code = InProcessCode(app, options)
    runner = ActivityRunner(code, async_hub, options, report=report)
    try:
        assert runner.reserve_slot()
        held = await async_hub.work_items.send_held(work_item("first"), hold=options.activity_visibility)
        runner.release_slot()
        assert runner.take(held)
        await asyncio.wait_for(reporting.wait(), timeout=10)
        assert runner.reserve_slot()  # the code ran: the slot is free while the answer goes out
        runner.release_slot()
        answered.set()
    finally:
        answered.set()
        await runner.stop(drain_timeout=10)
        code.close()
    assert reports == ["first"] and runner.executed == 1
    assert await async_hub.work_items.approximate_count() == 0  # its work item was deleted


async def test_handovers_hold_as_many_work_items_as_a_receive_would(async_hub: AsyncTaskHub) -> None:
    """A receive keeps up to twice ``max_concurrent_activities`` work items (the running ones
    and one batch waiting for their slots); work items this process schedules are handed over
    up to the same bound, rather than sent through the shared queue and received again."""
    options = WorkerOptions(max_concurrent_activities=1)
    release, both_reported = asyncio.Event(), asyncio.Event()
    reports: list[str] = []

    async def report(instance_id: str, message: envelope.MessageData) -> None:
        reports.append(instance_id)
        if len(reports) == 2:
            both_reported.set()

    code = InProcessCode(app, options)
    runner = ActivityRunner(code, async_hub, options, report=report)
    original = code.run_activity

    async def blocked(scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance) -> ev.HistoryEvent:
        await release.wait()
        return await original(scheduled, target)

    code.run_activity = blocked  # type: ignore[method-assign]
    try:
        for name in ("running", "waiting"):
            assert runner.reserve_slot(), name
            held = await async_hub.work_items.send_held(work_item(name), hold=options.activity_visibility)
            runner.release_slot()
            assert runner.take(held)
        assert not runner.reserve_slot()  # twice the capacity held: the next goes through the queue
        release.set()
        await asyncio.wait_for(both_reported.wait(), timeout=10)
    finally:
        release.set()
        await runner.stop(drain_timeout=10)
        code.close()
    assert sorted(reports) == ["running", "waiting"]
