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
