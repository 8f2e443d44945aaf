"""One operation over many instances, a few at a time: purges and entity cleanup by filter.

Each instance's operation is idempotent (a purge deletes the row last, so running it again
finishes it), so a bulk run that is interrupted is finished by running it again. ``limit`` is
``TaskHubSettings.bulk_concurrency``: requests at once against the account. The async client
uses ``async_for_each``; ``scripts/unasync.py`` turns that call into ``for_each`` (threads) in
the sync client it generates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, int], None]  # (done, total), called after each item


async def async_for_each(
    items: Sequence[T],
    operation: Callable[[T], Awaitable[R]],
    *,
    limit: int,
    progress: Progress | None = None,
) -> list[R]:
    """``operation`` on every item, at most ``limit`` at once; results in order. The first
    failure cancels the rest and is raised as itself (what finished stays done)."""
    semaphore = asyncio.Semaphore(limit)
    results: list[R | None] = [None] * len(items)
    done = 0

    async def one(index: int, item: T) -> None:
        nonlocal done
        async with semaphore:
            results[index] = await operation(item)
        done += 1
        if progress is not None:
            progress(done, len(items))

    try:
        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                group.create_task(one(index, item))
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return results  # type: ignore[return-value]  # every slot was filled


def for_each(
    items: Sequence[T], operation: Callable[[T], R], *, limit: int, progress: Progress | None = None
) -> list[R]:
    """The same on threads, for the sync client (its storage clients are thread-safe)."""
    lock = Lock()
    done = 0

    def one(item: T) -> R:
        nonlocal done
        result = operation(item)
        with lock:
            done += 1
            if progress is not None:
                progress(done, len(items))
        return result

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="durablehub-bulk") as pool:
        return list(pool.map(one, items))
