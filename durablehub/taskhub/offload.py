"""Run CPU-bound work on large inputs off the event loop.

Gzip and JSON of a large body take about 0.5 s per 10 MB: on the loop, a few hundred MB
would stall lease renewal for a whole lease period. Above ``THRESHOLD`` bytes the asyncio
adapters run such work on a small pool of their own (not the loop's default executor, which
user code can fill); below it, a thread hop costs more than the work. The sync adapters,
generated from the async ones, call ``offload``, which runs the work in place.

``async_bounded_map`` (``bounded_map`` in the sync twins) runs I/O a few at a time, and
``async_both`` (``both``) two requests at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

THRESHOLD = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="durablehub-codec")


def offload(fn: Callable[P, T], size: int, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, here (the sync twin of ``async_offload``)."""
    return fn(*args, **kwargs)


def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, here (the sync twin of ``async_in_thread``)."""
    return fn(*args, **kwargs)


async def async_in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a worker thread, whatever its size: for work on data that is
    always large (a blob) and whose real size is not known in advance (what it inflates to)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


async def async_offload(fn: Callable[P, T], size: int, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, on a worker thread when ``size`` (its input's bytes) is large."""
    if size < THRESHOLD:
        return fn(*args, **kwargs)
    return await async_in_thread(fn, *args, **kwargs)


def both(first: Callable[[], A], second: Callable[[], T]) -> tuple[A | Exception, T | Exception]:
    """``first()`` and ``second()`` at once, ``first`` on a thread (the sync twin of
    ``async_both``); each result, or the exception it raised."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_attempt, first)
        other = _attempt(second)
        return pending.result(), other


def _attempt(fn: Callable[[], T]) -> T | Exception:
    try:
        return fn()
    except Exception as exc:
        return exc


async def async_both(
    first: Callable[[], Awaitable[A]], second: Callable[[], Awaitable[T]]
) -> tuple[A | Exception, T | Exception]:
    """``await first()`` and ``await second()`` at once; each result, or the exception it raised."""
    one, other = await asyncio.gather(first(), second(), return_exceptions=True)
    for result in (one, other):
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # a cancellation, not a failed write
    return one, other  # type: ignore[return-value]


def bounded_map(fn: Callable[[A], T], items: Sequence[A], *, limit: int) -> list[T | Exception]:
    """``fn`` of each item, at most ``limit`` at once on threads (the sync twin of
    ``async_bounded_map``); each result in order, or the exception it raised."""

    def attempt(item: A) -> T | Exception:
        return _attempt(functools.partial(fn, item))

    if len(items) <= 1:
        return [attempt(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        return list(pool.map(attempt, items))


async def async_bounded_map(
    fn: Callable[[A], Awaitable[T]], items: Sequence[A], *, limit: int
) -> list[T | Exception]:
    """``await fn(item)`` for each item, at most ``limit`` at once; each result in order, or
    the exception it raised."""
    gate = asyncio.Semaphore(limit)

    async def attempt(item: A) -> T | Exception:
        async with gate:
            try:
                return await fn(item)
            except Exception as exc:
                return exc

    return list(await asyncio.gather(*(attempt(item) for item in items)))
