"""Run CPU-bound work on large inputs off the event loop.

Gzip and JSON of a large body take about 0.5 s per 10 MB: on the loop, a few hundred MB
would stall lease renewal for a whole lease period. Above ``THRESHOLD`` bytes the asyncio
adapters run such work on a small pool of their own (not the loop's default executor, which
user code can fill); below it, a thread hop costs more than the work. The sync adapters,
generated from the async ones, call ``offload``, which runs the work in place.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

THRESHOLD = 256 * 1024

P = ParamSpec("P")
T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="durablehub-codec")


def offload(fn: Callable[P, T], size: int, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, here (the sync twin of ``async_offload``)."""
    return fn(*args, **kwargs)


async def async_offload(fn: Callable[P, T], size: int, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, on a worker thread when ``size`` (its input's bytes) is large."""
    if size < THRESHOLD:
        return fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))
