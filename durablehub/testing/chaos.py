"""A chaos run: worker processes killed with SIGKILL and restarted while orchestrations run.

``ChaosRun`` starts ``durablehub worker durablehub.testing.chaos:app`` processes on one hub,
schedules a mixed workload (chains, fan-outs, timers, external events, sub-orchestrations,
continue-as-new) whose outputs are known in advance, kills a random worker every few seconds
and starts a replacement, then waits for every instance and reports:

* lost: an instance that was scheduled and has no Instances row; stuck: not finished in time;
  wrong: finished with another status or output than expected (all three must be 0);
* duplicate activity executions (activities are at-least-once; each execution appends a line
  to a shared log, so re-runs after a kill are counted, not hidden);
* takeover time per kill: from the SIGKILL until every partition the dead worker held was
  leased again, seen as a higher lease epoch (every acquire or steal raises it) by a thread
  that polls the lease blobs every 0.2 s -- so a new owner that is itself killed a moment
  later still counts, and a slow status query cannot delay the figure (the goal: at most the
  lease period plus one balance interval).

``scripts/chaos.py`` runs the full version; ``tests/reliability`` a small one in CI.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub

LOG_ENV = "DURABLEHUB_CHAOS_LOG"
SETTLE_SECONDS = 25.0  # after the last instance, how long takeovers still in flight may take

app = dh.App()


def _record(ctx: dh.ActivityContext, value: Any) -> None:
    log_dir = os.environ.get(LOG_ENV)
    if log_dir:  # one short O_APPEND write per execution: atomic, even across processes
        line = f"{ctx.orchestration_id}|{ctx.task_id}|{ctx.task_name}|{value}\n".encode()
        fd = os.open(Path(log_dir) / "activities.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@app.activity
def add_one(ctx: dh.ActivityContext, n: int) -> int:
    _record(ctx, n)
    return n + 1


@app.activity
def double(ctx: dh.ActivityContext, n: int) -> int:
    _record(ctx, n)
    return n * 2


@app.activity
def square(ctx: dh.ActivityContext, n: int) -> int:
    _record(ctx, n)
    return n * n


@app.activity
def nap(ctx: dh.ActivityContext, n: int) -> int:
    time.sleep(0.4)  # long enough for a kill to land mid-activity
    _record(ctx, n)
    return n + 1


@app.orchestrator
def slow_chain(ctx: dh.OrchestrationContext, n: int):
    for _ in range(4):
        n = yield ctx.call_activity(nap, input=n)
    return n


@app.orchestrator
def chain(ctx: dh.OrchestrationContext, n: int):
    a = yield ctx.call_activity(add_one, input=n)
    b = yield ctx.call_activity(double, input=a)
    return (yield ctx.call_activity(add_one, input=b))


@app.orchestrator
def fan_out(ctx: dh.OrchestrationContext, n: int):
    squares = yield dh.when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return sum(squares)


@app.orchestrator
def sleeper(ctx: dh.OrchestrationContext, n: int):
    yield ctx.create_timer(timedelta(seconds=1 + n % 3))
    return (yield ctx.call_activity(add_one, input=n))


@app.orchestrator
def approval(ctx: dh.OrchestrationContext, n: int):
    data = yield ctx.wait_for_external_event("Go")
    return data + n


@app.orchestrator
def parent(ctx: dh.OrchestrationContext, n: int):
    results = yield dh.when_all(
        [
            ctx.call_sub_orchestrator(chain, input=n + i, instance_id=f"{ctx.instance_id}-c{i}")
            for i in range(2)
        ]
    )
    return sum(results)


@app.orchestrator
def counter(ctx: dh.OrchestrationContext, state: dict[str, int]):
    count = yield ctx.call_activity(add_one, input=state["count"])
    if count < state["until"]:
        ctx.continue_as_new({"count": count, "until": state["until"]})
        return None
    return count


def _chain(n: int) -> int:
    return (n + 1) * 2 + 1


@dataclass(frozen=True, slots=True)
class Case:
    instance_id: str
    orchestrator: str
    input: Any
    expected: Any
    event: Any = None  # data for a "Go" event, raised after the start


def workload(count: int, *, prefix: str, seed: int = 7) -> list[Case]:
    """``count`` cases cycling through every pattern, with their expected outputs."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for i in range(count):
        n = rng.randint(0, 50)
        iid = f"{prefix}-{i:04d}"
        match i % 7:
            case 0:
                cases.append(Case(iid, "chain", n, _chain(n)))
            case 1:
                width = 5 + n % 6
                cases.append(Case(iid, "fan_out", width, sum(k * k for k in range(width))))
            case 2:
                cases.append(Case(iid, "sleeper", n, n + 1))
            case 3:
                cases.append(Case(iid, "approval", n, 100 + n, event=100))
            case 4:
                cases.append(Case(iid, "parent", n, _chain(n) + _chain(n + 1)))
            case 5:
                cases.append(Case(iid, "slow_chain", n, n + 4))
            case _:
                until = 2 + n % 3
                cases.append(Case(iid, "counter", {"count": 0, "until": until}, until))
    return cases


@dataclass
class Kill:
    at: float
    worker_id_part: str
    epochs: dict[str, int]  # partition -> lease epoch the dead worker held it under
    takeover_seconds: float | None = None

    @property
    def partitions(self) -> set[str]:
        return set(self.epochs)


@dataclass
class ChaosReport:
    scheduled: int
    completed: int
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    activity_executions: int = 0
    duplicate_executions: int = 0
    kills: list[Kill] = field(default_factory=list)
    seconds: float = 0.0
    lease_seconds: float = 15.0
    balance_seconds: float = 3.0

    @property
    def takeovers(self) -> list[float]:
        return [k.takeover_seconds for k in self.kills if k.takeover_seconds is not None]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stuck or self.wrong)

    def lines(self) -> list[str]:
        takeovers = self.takeovers
        untaken = sum(1 for k in self.kills if k.partitions and k.takeover_seconds is None)
        out = [
            f"orchestrations scheduled     {self.scheduled}",
            f"completed correctly          {self.completed}",
            f"lost                         {len(self.lost)}",
            f"stuck                        {len(self.stuck)}",
            f"wrong output                 {len(self.wrong)}",
            f"activity executions          {self.activity_executions}",
            f"duplicate executions         {self.duplicate_executions} (at-least-once; re-runs after kills)",
            f"workers killed (SIGKILL)     {len(self.kills)}",
        ]
        if takeovers:
            p90 = sorted(takeovers)[int(0.9 * (len(takeovers) - 1))]
            out.append(
                f"takeover after a kill        median {statistics.median(takeovers):.1f} s, "
                f"p90 {p90:.1f} s, max {max(takeovers):.1f} s over {len(takeovers)} kills holding "
                f"partitions (goal: lease {self.lease_seconds:g} s + balance {self.balance_seconds:g} s)"
            )
        if untaken:
            out.append(f"kills whose partitions were not yet taken over at the end: {untaken}")
        out.append(f"wall time                    {self.seconds:.0f} s")
        for label, ids in (("lost", self.lost), ("stuck", self.stuck), ("wrong", self.wrong)):
            if ids:
                out.append(f"{label}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
        return out


def stop_gracefully(processes: list[subprocess.Popen[bytes]], *, grace: float = 30.0) -> None:
    """SIGTERM every live worker process, then SIGKILL those still running after ``grace`` s."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ChaosRun:
    """Worker processes on one hub, a killer, and the bookkeeping of a chaos run."""

    def __init__(
        self,
        settings: dh.TaskHubSettings,
        log_dir: Path,
        *,
        workers: int = 4,
        cwd: Path | None = None,
        worker_env: dict[str, str] | None = None,
        say: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.worker_count = workers
        self.cwd = cwd
        self.worker_env = worker_env or {}
        self.say = say
        self.processes: list[subprocess.Popen[bytes]] = []
        self.kills: list[Kill] = []
        self._spawned = 0
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    # --- workers ---

    def spawn(self) -> subprocess.Popen[bytes]:
        assert self.settings.connection_string is not None
        log = open(self.log_dir / f"worker-{self._spawned}.log", "wb")  # noqa: SIM115
        self._spawned += 1
        env = {
            **os.environ,
            "AzureWebJobsStorage": self.settings.connection_string.get_secret_value(),
            "DURABLEHUB_TASK_HUB": self.settings.task_hub,
            "DURABLEHUB_PARTITION_COUNT": str(self.settings.partition_count),
            LOG_ENV: str(self.log_dir),
            **self.worker_env,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durablehub",
                "worker",
                "durablehub.testing.chaos:app",
                "--log-level",
                "INFO",
            ],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        with self._lock:
            self.processes.append(process)
        return process

    def alive(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [p for p in self.processes if p.poll() is None]

    def kill_one(self, hub: TaskHub, rng: random.Random) -> Kill | None:
        candidates = self.alive()
        if not candidates:
            return None
        victim = rng.choice(candidates)
        tag = f"-{victim.pid}-"
        held = {
            s.lease.partition_id: s.lease.epoch
            for s in hub.leases.list()
            if s.leased and tag in (s.lease.owner or "")
        }
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        kill = Kill(at=time.monotonic(), worker_id_part=tag, epochs=held)
        with self._lock:
            self.kills.append(kill)
        self.say(
            f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} killed worker pid {victim.pid} "
            f"holding {sorted(held) or 'no partitions'}"
        )
        self.spawn()
        return kill

    def watch_takeovers(self, hub: TaskHub) -> None:
        """Set each kill's takeover time once every partition it held was leased again."""
        with self._lock:
            pending = [k for k in self.kills if k.takeover_seconds is None and k.epochs]
        if not pending:
            return
        epochs = {s.lease.partition_id: s.lease.epoch for s in hub.leases.list()}
        now = time.monotonic()
        for kill in pending:
            if all(epochs.get(p, -1) > epoch for p, epoch in kill.epochs.items()):
                kill.takeover_seconds = now - kill.at

    def _watch(self, stop: threading.Event) -> None:
        with TaskHub(self.settings) as own_hub:  # its own HTTP sessions: this is a thread
            while not stop.wait(0.2):
                try:
                    self.watch_takeovers(own_hub)
                except Exception as exc:  # a slow or failed read only delays a figure
                    self.say(f"lease watch: {exc!r}")

    def stop_all(self) -> None:
        stop_gracefully(self.processes)

    # --- the run ---

    def run(
        self,
        cases: list[Case],
        *,
        kill_every: tuple[float, float] = (3.0, 6.0),
        kill_for: float | None = None,
        deadline: float = 600.0,
        seed: int = 11,
        schedule_over: float = 0.0,
    ) -> ChaosReport:
        """Schedule ``cases`` (spread evenly over ``schedule_over`` seconds, so that kills land
        on every stage of the work), kill a worker every ``kill_every`` seconds (uniform) until
        all are done or ``kill_for`` seconds passed, and wait up to ``deadline`` for completion."""
        rng = random.Random(seed)
        started = time.monotonic()
        for _ in range(self.worker_count):
            self.spawn()
        stop_killing = threading.Event()
        with TaskHub(self.settings) as hub, DurableClient(self.settings, hub=hub) as client:
            hub.create()

            def killer() -> None:  # from the first start on, so kills land while work is queued
                with TaskHub(self.settings) as own_hub:  # its own HTTP sessions: this is a thread
                    while not stop_killing.wait(rng.uniform(*kill_every)):
                        if kill_for is not None and time.monotonic() - started > kill_for:
                            return
                        self.kill_one(own_hub, rng)

            killing = threading.Thread(target=killer, name="chaos-killer", daemon=True)
            killing.start()
            stop_watching = threading.Event()
            watching = threading.Thread(
                target=self._watch, args=(stop_watching,), name="chaos-lease-watch", daemon=True
            )
            watching.start()
            try:
                with ThreadPoolExecutor(max_workers=8) as pool:  # one start is ~3 round trips
                    futures = []
                    for index, case in enumerate(cases):
                        due = started + schedule_over * index / max(1, len(cases))
                        time.sleep(max(0.0, due - time.monotonic()))
                        futures.append(pool.submit(self._schedule, client, case))
                    for future in futures:
                        future.result()
                self.say(f"scheduled {len(cases)} orchestrations in {time.monotonic() - started:.1f} s")
                finished: dict[str, dh.OrchestrationState] = {}
                prefix = os.path.commonprefix([c.instance_id for c in cases])
                while time.monotonic() - started < deadline:
                    states = client.get_all_orchestration_states(
                        dh.OrchestrationQuery(
                            instance_id_prefix=prefix, fetch_inputs_and_outputs=True, page_size=1000
                        )
                    )
                    finished = {s.instance_id: s for s in states if s.runtime_status.is_terminal}
                    if all(c.instance_id in finished for c in cases):
                        break
                    time.sleep(0.5)
                stop_killing.set()
                killing.join(timeout=30)
                # Let pending takeovers resolve (bounded), so the figures are complete.
                settle = time.monotonic() + SETTLE_SECONDS
                while (
                    any(k.takeover_seconds is None and k.epochs for k in self.kills)
                    and time.monotonic() < settle
                ):
                    time.sleep(0.25)
            finally:
                stop_killing.set()
                stop_watching.set()
                killing.join(timeout=30)
                watching.join(timeout=30)
            report = self._report(client, cases, finished)
        report.seconds = time.monotonic() - started
        return report

    @staticmethod
    def _schedule(client: DurableClient, case: Case) -> None:
        client.schedule_new_orchestration(case.orchestrator, input=case.input, instance_id=case.instance_id)
        if case.event is not None:
            client.raise_orchestration_event(case.instance_id, "Go", data=case.event)

    def _report(
        self, client: DurableClient, cases: list[Case], finished: dict[str, dh.OrchestrationState]
    ) -> ChaosReport:
        report = ChaosReport(scheduled=len(cases), completed=0, kills=list(self.kills))
        for case in cases:
            state = finished.get(case.instance_id) or client.get_orchestration_state(case.instance_id)
            if state is None:
                report.lost.append(case.instance_id)
            elif not state.runtime_status.is_terminal:
                report.stuck.append(case.instance_id)
            elif (
                state.runtime_status is not dh.OrchestrationStatus.COMPLETED
                or state.get_output() != case.expected
            ):
                report.wrong.append(case.instance_id)
            else:
                report.completed += 1
        log = self.log_dir / "activities.log"
        lines = log.read_text().splitlines() if log.exists() else []
        executions = Counter(lines)
        report.activity_executions = len(lines)
        report.duplicate_executions = sum(n - 1 for n in executions.values() if n > 1)
        return report
