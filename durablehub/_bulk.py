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
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
P = TypeVar("P")
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

    async def nothing(_: Sequence[T]) -> None:
        return None

    async def one(item: T, _: None) -> R:
        return await operation(item)

    results = await async_for_each_grouped([items], nothing, one, limit=limit, progress=progress)
    return results  # type: ignore[return-value]  # no stop: every slot was filled


def for_each(
    items: Sequence[T], operation: Callable[[T], R], *, limit: int, progress: Progress | None = None
) -> list[R]:
    """The same on threads, for the sync client (its storage clients are thread-safe)."""
    results = for_each_grouped(
        [items], lambda _: None, lambda item, _: operation(item), limit=limit, progress=progress
    )
    return results  # type: ignore[return-value]  # no stop: every slot was filled


async def async_for_each_grouped(
    groups: Sequence[Sequence[T]],
    prepare: Callable[[Sequence[T]], Awaitable[P]],
    operation: Callable[[T, P], Awaitable[R]],
    *,
    limit: int,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[R | None]:
    """``operation(item, prepare(group))`` on every item, at most ``limit`` at once; results in
    order. A group is prepared while the one before it is being worked on, so the workers are
    not left idle between groups; at most two groups are held at a time. Once ``stop()`` is
    true (a purge's timeout), no item starts and no group is prepared: their results are None;
    items under way finish."""
    semaphore = asyncio.Semaphore(limit)
    total = sum(len(group) for group in groups)
    results: list[R | None] = [None] * total
    done = 0
    stopped = stop or (lambda: False)

    async def one(index: int, item: T, prepared: P) -> None:
        nonlocal done
        async with semaphore:
            if stopped():
                return
            results[index] = await operation(item, prepared)
        done += 1
        if progress is not None:
            progress(done, total)

    try:
        async with asyncio.TaskGroup() as group_tasks:
            start = 0
            older: list[asyncio.Task[None]] = []
            previous: list[asyncio.Task[None]] = []
            for group in groups:
                if older:  # at most two groups held: queued behind each other
                    await asyncio.wait(older)
                if stopped():
                    break
                prepared = await prepare(group)
                tasks = [
                    group_tasks.create_task(one(start + offset, item, prepared))
                    for offset, item in enumerate(group)
                ]
                older, previous = previous, tasks
                start += len(group)
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return results


def for_each_grouped(
    groups: Sequence[Sequence[T]],
    prepare: Callable[[Sequence[T]], P],
    operation: Callable[[T, P], R],
    *,
    limit: int,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[R | None]:
    """The same on threads: this thread prepares the next group while the pool works."""
    lock = Lock()
    total = sum(len(group) for group in groups)
    done = 0
    stopped = stop or (lambda: False)

    def one(item: T, prepared: P) -> R | None:
        nonlocal done
        if stopped():
            return None
        result = operation(item, prepared)
        with lock:
            done += 1
            if progress is not None:
                progress(done, total)
        return result

    if not total:
        return []
    futures: list[Future[R | None]] = []
    with ThreadPoolExecutor(max_workers=min(limit, total), thread_name_prefix="durablehub-bulk") as pool:
        try:
            older: list[Future[R | None]] = []
            previous: list[Future[R | None]] = []
            for group in groups:
                for future in older:  # at most two groups held: queued behind each other
                    future.result()  # a failure stops the rest
                if stopped():
                    break
                prepared = prepare(group)
                tasks = [pool.submit(one, item, prepared) for item in group]
                older, previous = previous, tasks
                futures += tasks
            results = [future.result() for future in futures]
            return results + [None] * (total - len(results))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
