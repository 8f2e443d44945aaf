"""``durablehub worker APP --processes N``: N worker processes under one supervisor.

One Python process drives one core: CPU-bound episodes (replays, JSON) of a busy hub need more
processes, not more threads. The children are ordinary ``durablehub worker`` processes, each
with its own worker id, so they balance the partitions through the blob leases exactly as
workers on different machines do. The supervisor only starts them, restarts one that dies
(logged; a child that keeps dying within seconds of its start is restarted after a growing
pause), forwards SIGTERM/Ctrl-C so that every child drains and releases its partitions, and
exits at once (128 + signal), killing the children, on a second signal. A signal sent to the
whole process group (coreutils ``timeout``, systemd's default ``KillMode``, Ctrl-C in a
terminal) reaches each child twice, directly and forwarded: a child under a supervisor takes
that as one stop and leaves forcing to the supervisor. The children write to the supervisor's
stdout and stderr, each log line tagged with its process number: one log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from durablehub.telemetry.logs import announce

PROCESS_ENV = "DURABLEHUB_WORKER_PROCESS"  # a child's number, shown in its log lines
_QUICK_DEATH_SECONDS = 10.0
_MAX_RESTART_DELAY_SECONDS = 30.0


@dataclass
class _Child:
    number: int
    process: subprocess.Popen[bytes]
    started: float
    restarts: int = 0
    delay: float = 1.0
    due: float | None = field(default=None)  # when a dead child starts again


class WorkerSupervisor:
    def __init__(self, command: list[str], env: dict[str, str], count: int) -> None:
        self._command = command
        self._env = env
        self._count = count
        self._children: list[_Child] = []
        self._stopping: int | None = None  # the signal that asked us to stop

    def _spawn(self, number: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self._command, env={**self._env, PROCESS_ENV: str(number)})
        announce(f"supervisor: worker process {number} started (pid {process.pid})", err=True)
        return process

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stopping is not None:  # the second one: do not wait
            announce(f"supervisor: {signal.Signals(signum).name} again: killing the workers", err=True)
            for child in self._children:
                if child.process.poll() is None:
                    child.process.kill()
            sys.stdout.flush()
            os._exit(128 + signum)
        self._stopping = signum
        announce("supervisor: stopping the workers (they drain and release their partitions) ...", err=True)
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Until stopped: keep ``count`` children alive. Returns the exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        now = time.monotonic()
        self._children = [_Child(n, self._spawn(n), now) for n in range(1, self._count + 1)]
        while True:
            alive = [c for c in self._children if c.process.poll() is None]
            if self._stopping is not None and not alive:
                codes = [c.process.returncode for c in self._children]
                announce(f"supervisor: all workers stopped (exit codes {codes})", err=True)
                return 0 if all(code == 0 for code in codes) else 1
            if self._stopping is None:
                self._restart_dead()
            time.sleep(0.2)

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for child in self._children:
            if child.process.poll() is None:
                continue
            if child.due is None:
                quick = now - child.started < _QUICK_DEATH_SECONDS
                child.delay = min(child.delay * 2, _MAX_RESTART_DELAY_SECONDS) if quick else 1.0
                child.due = now + child.delay
                announce(
                    f"supervisor: worker process {child.number} (pid {child.process.pid}) exited with code "
                    f"{child.process.returncode}; restarting it in {child.delay:.0f} s",
                    err=True,
                )
            elif now >= child.due:
                child.process = self._spawn(child.number)
                child.started, child.due = now, None
                child.restarts += 1
