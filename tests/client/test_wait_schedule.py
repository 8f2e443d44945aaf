"""The status reads of ``wait_for_orchestration_*``: when they happen decides how late a
completion is noticed, how many there are is what the wait costs. Checked on the schedule
itself (no clock): a completion at any moment is read at most 50 ms or a quarter of the time
waited so far after it happens, and a long wait settles at one read a second."""

from __future__ import annotations

import itertools

from durablehub import _client_core as core


def read_times(until: float) -> list[float]:
    """When the reads of a wait happen (seconds after it began), the first one at once."""
    times, now = [0.0], 0.0
    for delay in core.poll_delays():
        now += delay
        if now > until:
            return times
        times.append(now)
    raise AssertionError("unreachable")


def test_a_completion_is_noticed_within_a_quarter_of_the_time_waited() -> None:
    reads = read_times(120)
    for done in (i / 1000 for i in range(1, 60_000, 7)):  # the instance completes at `done` s
        noticed = next(t for t in reads if t >= done)
        late = noticed - done
        assert late <= max(0.05, 0.25 * done) + 1e-9, (done, noticed)


def test_a_long_wait_reads_once_a_second() -> None:
    delays = list(itertools.islice(core.poll_delays(), 200))
    assert all(0.05 <= d <= 1.0 for d in delays)
    assert delays[-50:] == [1.0] * 50
    # Its cost: about 20 reads to settle (the first 4 s), then one a second.
    assert len(read_times(60)) <= 60 + 20


def noticed(running_from: float, done: float) -> tuple[float, float]:
    """A wait on an instance Pending until ``running_from`` s, Running until ``done`` s:
    when it first read Running, and when it read the completion."""
    schedule, now, seen_running = core.PollSchedule(), 0.0, float("inf")
    while now < done:
        if now >= running_from:
            seen_running = min(seen_running, now)
        status = core.OrchestrationStatus.PENDING if now < running_from else core.OrchestrationStatus.RUNNING
        now += schedule.after(status)
    return seen_running, now


def test_the_completion_is_timed_from_when_the_instance_was_seen_running() -> None:
    """A start that waited for a backed-off poller (up to the ceiling) does not make the
    completion noticed later: the schedule starts again when the wait sees it running."""
    for pending in (0.3, 1.0, 5.0, 30.0):
        for ran in (i / 100 for i in range(1, 500, 3)):
            done = pending + ran
            seen_running, read_done = noticed(pending, done)
            if seen_running < done:
                late = read_done - done
                assert late <= max(0.05, 0.25 * (done - seen_running)) + 1e-9, (pending, ran, late)
