"""UserCodeThreads: where user code runs, off the event loop.

Orchestrator functions, entity operations and plain (non-async) activities are user code and
may block (``time.sleep``, blocking I/O), or never return. Run on the loop, one would stop
every partition of the worker; run in the loop's default executor or a fixed pool, a few would
occupy all of its threads, and a default executor's threads are joined at exit, so one that
never returns would hang the process. Here every job runs on a daemon thread: idle threads are
reused, a new one starts when none is idle, and a thread stuck in user code after its deadline
is simply left behind (it cannot be killed) without holding anything the runtime needs: the
caller's deadline (``asyncio.wait_for`` around ``run``) fails the work, and the next job gets
another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Job = Callable[[], None]


class UserCodeThreads:
    def __init__(self, name: str = "durablehub-user-code") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job that no submitted job has claimed yet
        self._started = 0
        self._closed = False

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a daemon thread; cancelling the await abandons the thread's result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if future.done():  # the episode gave up on it (deadline, drain)
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def job() -> None:
            value: Any
            try:
                ok, value = True, fn()
            except BaseException as exc:  # handed to the awaiting episode
                ok, value = False, exc
            with contextlib.suppress(RuntimeError):  # the loop closed while user code blocked
                loop.call_soon_threadsafe(settle, ok, value)

        self._submit(job)
        return await future

    def _submit(self, job: _Job) -> None:
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._started += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True).start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def close(self) -> None:
        """Let idle threads end; threads still in user code end when it returns."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._jobs.put(None)
