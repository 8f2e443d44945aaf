"""The status reads of ``wait_for_orchestration_*``: when they happen decides how late a
completion is noticed, how many there are is what the wait costs. Checked on the schedule
itself (``PollSchedule``, no clock): a completion is read at most 50 ms or an eighth of the
instance's age after it happens, its run timed from when the wait saw it start if it saw it
Pending; an old instance and a long wait are read once a second."""

from __future__ import annotations

from durablehub import _client_core as core
from durablehub.models import OrchestrationStatus

PENDING, RUNNING = OrchestrationStatus.PENDING, OrchestrationStatus.RUNNING


def wait(done: float, *, created: float = 0.0, running_from: float = 0.0) -> tuple[list[float], float | None]:
    """A wait that begins at 0 on an instance created at ``created`` (<= 0), Pending until
    ``running_from``, complete at ``done``: the times of its reads, and of the first that
    found it Running after one found it Pending (None if there was none)."""
    schedule, now, reads, seen_pending, seen_running = core.PollSchedule(), 0.0, [], False, None
    while True:
        reads.append(now)
        if now >= done:
            return reads, seen_running
        status = PENDING if now < running_from else RUNNING
        seen_pending = seen_pending or status is PENDING
        if status is RUNNING and seen_pending and seen_running is None:
            seen_running = now
        now += schedule.after(status, waited=now, age=now - created)


def test_a_completion_is_noticed_within_an_eighth_of_the_instances_age() -> None:
    for created in (0.0, -0.2, -3.0):
        for done in (i / 1000 for i in range(1, 60_000, 7)):
            reads, _ = wait(done, created=created)
            assert reads[-1] - done <= max(0.05, 0.125 * (done - created)) + 1e-9, (created, done, reads[-1])


def test_a_long_wait_reads_once_a_second() -> None:
    reads, _ = wait(600)
    delays = [b - a for a, b in zip(reads, reads[1:], strict=False)]
    assert all(0.05 - 1e-9 <= d <= 1.0 + 1e-9 for d in delays)
    assert all(abs(d - 1.0) < 1e-9 for d in delays[-500:])
    # Its cost: about 30 reads to settle (the first 8 s), then one a second.
    assert len(wait(60)[0]) <= 60 + 30


def test_an_instance_running_for_a_while_is_read_once_a_second() -> None:
    """Waits on instances started together (a client waiting for each in turn): the later
    ones are old when their wait begins, and cost a read a second, not a new ramp each."""
    reads, _ = wait(5.0, created=-20.0)
    assert len(reads) <= 6


def test_time_spent_pending_counts_a_quarter_once_the_wait_saw_the_instance_start() -> None:
    """A start that waited for a backed-off poller (up to the ceiling) makes the completion
    noticed hardly later: the time the wait saw it Pending counts a quarter in its age."""
    for pending in (0.3, 1.0, 5.0, 30.0):
        for ran in (i / 100 for i in range(1, 500, 3)):
            done = pending + ran
            reads, seen_running = wait(done, running_from=pending)
            if seen_running is not None and seen_running < done:
                late = reads[-1] - done
                counted = done - seen_running + 0.25 * seen_running
                assert late <= max(0.05, 0.125 * counted) + 1e-9, (pending, ran, late)


def test_an_instance_that_waited_long_in_a_backlog_is_read_about_once_a_second() -> None:
    """Instances started together wait Pending behind each other: once one starts, its wait
    does not begin a new 50 ms ramp."""
    reads, _ = wait(15.0, created=-10.0, running_from=10.0)
    assert len(reads) <= 17
