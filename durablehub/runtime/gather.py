"""bounded_gather: run many storage requests at once, at most ``limit`` at a time.

On the first failure the rest are cancelled and awaited before the error is raised, so that
nothing started here is still running once the caller handles it: an episode whose send failed
gives its held messages away right after (``Delivery``), and a send finishing later would add
one that is never given, its reserved activity slot never released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def bounded_gather(coros: list[Coroutine[Any, Any, Any]], *, limit: int) -> None:
    """Await every coroutine, ``limit`` at once; the first error is raised as itself."""
    if len(coros) <= 1:
        for coro in coros:
            await coro
        return
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Coroutine[Any, Any, Any]) -> None:
        async with semaphore:
            await coro

    tasks = [asyncio.ensure_future(run(c)) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:  # a failure, or the caller cancelled: take the rest down before going on
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for coro in coros:
            coro.close()  # one cancelled before it started was never awaited: say it is done
    for task in tasks:  # the first that failed (in order, as gather would)
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
