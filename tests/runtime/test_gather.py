"""bounded_gather: the runtime's many-requests-at-once helper (sends, deletes, renewals)."""

from __future__ import annotations

import asyncio

import pytest

from durablehub.runtime.gather import bounded_gather


class Boom(Exception):
    pass


async def test_a_failure_cancels_the_rest_before_it_is_raised() -> None:
    """An episode whose send fails gives its held messages away right after; a send still in
    flight then must not add one (it would never be given, and its slot never released)."""
    finished: list[int] = []
    cancelled: list[int] = []

    async def slow(n: int) -> None:
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        finished.append(n)

    async def fail() -> None:
        await asyncio.sleep(0)
        raise Boom("send failed")

    with pytest.raises(Boom):
        await bounded_gather([slow(1), fail(), slow(2), slow(3)], limit=2)
    assert 1 in cancelled, "a running send is cancelled and awaited before the error"
    await asyncio.sleep(0.7)
    assert finished == [], "nothing ran on after bounded_gather raised"


async def test_the_first_error_is_raised_as_itself() -> None:
    async def fail(n: int) -> None:
        await asyncio.sleep(0.01 * n)
        raise Boom(str(n))

    with pytest.raises(Boom, match="^1$"):
        await bounded_gather([fail(3), fail(1), fail(2)], limit=8)


async def test_all_run_within_the_limit() -> None:
    running = 0
    most = 0

    async def work() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    await bounded_gather([work() for _ in range(20)], limit=4)
    assert most == 4 and running == 0
