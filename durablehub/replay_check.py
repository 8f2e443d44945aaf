"""Replay stored histories against the current code, writing nothing: will new code break
the instances in flight?

``check_history`` replays one execution's history into a fresh executor (the engine is pure:
no worker, no storage), exactly as a worker would after a deployment, and reports the first
place the code departs from it: the ``NonDeterminismError`` message naming both calls, or an
exception the code raises while replaying. ``durablehub replay-check`` runs it over the
instances a query selects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from durablehub.app import App
from durablehub.engine import history as ev
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.errors import NonDeterminismError

__all__ = ["ReplayVerdict", "check_history"]

_QUIET = logging.getLogger("durablehub.replay_check")
_QUIET.propagate = False  # the executor's warnings about replayed events are not findings
_QUIET.addHandler(logging.NullHandler())


@dataclass(frozen=True, slots=True)
class ReplayVerdict:
    """``problem`` is None when the code replays the history as recorded."""

    problem: str | None
    nondeterministic: bool = False


def check_history(
    app: App, history: Sequence[ev.HistoryEvent], *, default_version: str | None = None
) -> ReplayVerdict:
    """Replay ``history`` (one execution) with ``app``'s code for its name and version."""
    started = next((e for e in history if isinstance(e, ev.ExecutionStarted)), None)
    if started is None:
        return ReplayVerdict(None)  # not started yet: nothing to replay
    try:
        code = app.get_orchestrator(started.name, started.version).fn
    except LookupError as exc:
        return ReplayVerdict(f"no code to run it: {exc}")
    # Up to the recorded end: a finished execution is not run again, and from there on the
    # executor adopts the recorded outcome instead of checking it.
    ended = next(
        (i for i, e in enumerate(history) if isinstance(e, (ev.ExecutionCompleted, ev.ContinueAsNew))), None
    )
    past = list(history if ended is None else history[:ended])
    executor = OrchestrationExecutor(code, logger=_QUIET, default_version=default_version)
    result = executor.execute(past, [])
    completion = result.completion
    details = completion.failure_details if completion is not None else None
    if details is None:
        return ReplayVerdict(None)
    if details.is_caused_by(NonDeterminismError):
        return ReplayVerdict(details.message, nondeterministic=True)
    if ended is None:  # an instance in flight would fail on its next episode
        return ReplayVerdict(f"the code raises while replaying: {details}")
    return ReplayVerdict(None)  # a finished execution that failed in its code: as recorded
