"""The versioning check before each episode, and what a rejected episode costs.

DurableTask.Core's orchestration dispatcher checks the instance's version against the
worker's ``VersioningSettings`` before every episode (a continue-as-new's next generation
included). FAIL ends the instance with error type ``VersionMismatch``, its code not run;
REJECT abandons the work item: nothing is written, the messages come back later. durablehub
does the same, and also treats an instance whose version the App has no code for (versioned
registrations only, none matching) by the failure strategy.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration
from durablehub.engine.replay import EpisodeResult
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.retries import abandon_delay
from durablehub.versioning import (
    VERSION_MISMATCH,
    VersionFailureStrategy,
    VersioningOptions,
    version_mismatch,
)

__all__ = ["EpisodeRejected", "VersionGate", "version_failed_episode"]

_LOG = logging.getLogger("durablehub.worker")
_REMEMBERED = 10_000  # instances whose rejections are counted (for the delay and the log)


class EpisodeRejected(Exception):
    """The episode must not run on this worker; its messages go back untouched."""

    def __init__(self, reason: str, *, said: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.said = said  # already logged (once per name): not again per instance


def version_failed_episode(reason: str, *, next_id: int) -> EpisodeResult:
    """The FAIL strategy's episode: the instance fails, non-retriable, nothing else is done."""
    details = FailureDetails(message=reason, error_type=VERSION_MISMATCH, is_non_retriable=True)
    completion = CompleteOrchestration(id=next_id, status=OrchestrationStatus.FAILED, failure_details=details)
    return EpisodeResult(actions=(completion,), custom_status=None, is_complete=True, is_suspended=False)


class VersionGate:
    """A worker's versioning policy applied to episodes, with a memory of its rejections."""

    def __init__(self, options: VersioningOptions, *, base_delay_seconds: int) -> None:
        self.options = options
        self._base_delay = base_delay_seconds
        self._rejected: OrderedDict[str, tuple[str | None, int]] = OrderedDict()  # id → (execution, count)

    def check(self, started: ev.ExecutionStarted, *, next_id: int) -> EpisodeResult | None:
        """None if the episode may run; the FAIL strategy's result if it fails the instance.

        Raises:
            EpisodeRejected: the REJECT strategy and a version that does not fit.
        """
        reason = version_mismatch(self.options, started.version)
        if reason is None:
            return None
        return self.on_mismatch(reason, next_id=next_id)

    def on_mismatch(self, reason: str, *, next_id: int) -> EpisodeResult:
        if self.options.failure_strategy is VersionFailureStrategy.FAIL:
            return version_failed_episode(reason, next_id=next_id)
        raise EpisodeRejected(reason)

    def rejected(self, started: ev.ExecutionStarted, reason: str, *, said: bool = False) -> int:
        """Note a rejection of ``started``'s execution; the seconds its messages stay hidden.

        The first rejection of an execution is logged as a warning, later ones at debug level:
        a REJECT can last until the next deployment. ``said``: the caller has logged the cause
        already (``durablehub.runtime.unknown``), so every rejection is at debug level."""
        instance = started.orchestration_instance
        execution, count = self._rejected.pop(instance.instance_id, (None, 0))
        count = count + 1 if execution == instance.execution_id else 1
        self._rejected[instance.instance_id] = (instance.execution_id, count)
        while len(self._rejected) > _REMEMBERED:
            self._rejected.popitem(last=False)
        if said:
            _LOG.debug("handing back the messages of instance %r: %s", instance.instance_id, reason)
            return abandon_delay(self._base_delay, count)
        log = _LOG.warning if count == 1 else _LOG.debug
        log(
            "not running instance %r (orchestrator %r) on this worker: %s; its messages are handed "
            "back until a worker whose version fits takes them (failure strategy REJECT)",
            instance.instance_id,
            started.name,
            reason,
        )
        return abandon_delay(self._base_delay, count)

    def ran(self, instance_id: str) -> None:
        self._rejected.pop(instance_id, None)
