"""Tracking logs: Durable Functions' tracking events on the logger ``durablehub.tracking``.

The event names (``FunctionScheduled``, ``FunctionStarting``, ``FunctionAwaited``,
``FunctionListening``, ``ExternalEventRaised``, ``FunctionCompleted``, ``FunctionFailed``,
``FunctionTerminated``, ``TimerExpired``, ``FunctionRewound``, ``OperationCompleted``,
``OperationFailed``), their ``state`` values and their fields (``instanceId``,
``functionName``, ``functionType``, ``reason``, ``isReplay``, ``hubName``,
``sequenceNumber``, ``taskEventId``, ``duration`` in milliseconds...) are those of the
Durable Functions extension's tracking events, so that queries written for them carry over.
The fields go on the log record (``extra``): the JSON log format writes them as keys.

Orchestration events are derived from an episode after it is committed (a conflict or a
crash before the commit logs nothing; a redelivered episode may log again). As in Durable
Functions, events of replayed work are off by default (``DURABLEHUB_TRACE_REPLAY_EVENTS=true``
turns them on) and payloads (inputs, outputs, event data, termination reasons) are
replaced by ``(Redacted N characters)`` unless ``DURABLEHUB_TRACE_PAYLOADS=true``; a failure
carries its error type and message, secrets masked, as the extension's ``FunctionFailed`` does.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from durablehub.engine import history as ev
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.telemetry import metrics
from durablehub.telemetry.logs import TraceContextFilter, escape_controls, mask_secrets

LOGGER_NAME = "durablehub.tracking"
PAYLOADS_SETTING = "DURABLEHUB_TRACE_PAYLOADS"
REPLAY_SETTING = "DURABLEHUB_TRACE_REPLAY_EVENTS"

_LOG = logging.getLogger(LOGGER_NAME)
# On the logger, not only on the CLI's handler: an application's own handlers get the ids too.
_LOG.addFilter(TraceContextFilter())
_sequence = itertools.count()  # per process, as the extension's SequenceNumber


class FunctionType(enum.StrEnum):
    ORCHESTRATOR = "Orchestrator"
    ACTIVITY = "Activity"
    ENTITY = "Entity"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True, slots=True)
class TrackingOptions:
    trace_payloads: bool = False
    trace_replay_events: bool = False

    @classmethod
    def from_environment(cls) -> TrackingOptions:
        return cls(trace_payloads=_flag(PAYLOADS_SETTING), trace_replay_events=_flag(REPLAY_SETTING))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Tracker:
    """Writes the tracking events of one task hub."""

    def __init__(self, hub_name: str, options: TrackingOptions | None = None) -> None:
        self.hub_name = hub_name
        self.options = options or TrackingOptions.from_environment()

    def payload(self, text: str | None) -> str:
        """``text`` itself when payloads are traced, else how long it was."""
        text = text or ""
        return text if self.options.trace_payloads else f"(Redacted {len(text)} characters)"

    def failure(self, details: FailureDetails | None, reason: str | None = None) -> str:
        """The error type and message, as Durable Functions' ``FunctionFailed`` carries its
        reason: secrets masked (a message may quote a connection string or a SAS URL) and
        control characters escaped (it goes into the line, for any handler)."""
        if details is None:
            text = reason or "(no reason given)"
        else:
            text = f"{details.error_type}: {details.message}" if details.message else details.error_type
        return escape_controls(mask_secrets(text))

    def emit(
        self,
        event: str,
        state: str,
        message: str,
        *,
        instance_id: str,
        function_name: str,
        function_type: FunctionType,
        execution_id: str | None = None,
        is_replay: bool = False,
        level: int = logging.INFO,
        **fields: Any,
    ) -> None:
        if (is_replay and not self.options.trace_replay_events) or not _LOG.isEnabledFor(level):
            return
        record = {
            "event": event,
            "instanceId": instance_id,
            "executionId": execution_id,
            "functionName": function_name,
            "functionType": str(function_type),
            "state": state,
            "isReplay": is_replay,
            "hubName": self.hub_name,
            "sequenceNumber": next(_sequence),
            **{k: v for k, v in fields.items() if v is not None},
        }
        _LOG.log(  # escaped here too: an application's own handlers write this line as well
            level,
            "%s: Function '%s (%s)' %s. IsReplay: %s.",
            escape_controls(instance_id),
            escape_controls(function_name),
            function_type,
            escape_controls(message),
            is_replay,
            extra=record,
        )

    # --- orchestrations ---

    def episode(
        self,
        *,
        instance_id: str,
        started: ev.ExecutionStarted,
        past: Sequence[ev.HistoryEvent],
        new_events: Sequence[ev.HistoryEvent],
        written: Sequence[ev.HistoryEvent],
        listening: Sequence[str] = (),
        now: datetime | None = None,
    ) -> None:
        """The events of one committed episode: ``past`` was replayed, ``new_events`` came in,
        ``written`` is what the orchestrator did (scheduled, completed...); ``now`` is when
        the episode began. Also records the episode's metrics."""
        name = started.name
        if now is not None:
            metrics.EPISODE_DURATION.record((datetime.now(UTC) - now).total_seconds(), {"name": name})
        for event in written:
            if (
                isinstance(event, ev.ExecutionCompleted)
                and event.orchestration_status is OrchestrationStatus.FAILED
            ):
                details = event.failure_details
                metrics.failure("orchestration", name, details.error_type if details else None)
        if not _LOG.isEnabledFor(logging.INFO):
            return
        common: dict[str, Any] = {
            "instance_id": instance_id,
            "function_name": name,
            "function_type": FunctionType.ORCHESTRATOR,
            "execution_id": started.orchestration_instance.execution_id,
        }
        fresh = any(isinstance(e, ev.ExecutionStarted) for e in new_events)
        if self.options.trace_replay_events:
            if not fresh:
                self._starting(started, common, is_replay=True)
            for event in past:
                self._event(event, name, common, is_replay=True)
        if fresh:
            self._starting(started, common, is_replay=False)
        for event in new_events:
            self._event(event, name, common, is_replay=False)
        terminated = next((e for e in new_events if isinstance(e, ev.ExecutionTerminated)), None)
        for event in written:
            self._event(event, name, common, is_replay=False, started=started, terminated=terminated, now=now)
        if not any(isinstance(e, (ev.ExecutionCompleted, ev.ContinueAsNew)) for e in written):
            for event_name in listening:
                self.emit(
                    "FunctionListening",
                    "Listening",
                    "is waiting for input",
                    reason=f"WaitForExternalEvent:{event_name}",
                    **common,
                )
            self.emit("FunctionAwaited", "Awaited", "awaited", **common)

    def rewound(self, *, instance_id: str, started: ev.ExecutionStarted, reason: str | None) -> None:
        self.emit(
            "FunctionRewound",
            "Rewound",
            "was rewound",
            instance_id=instance_id,
            function_name=started.name,
            function_type=FunctionType.ORCHESTRATOR,
            execution_id=started.orchestration_instance.execution_id,
            reason=self.payload(reason),
            level=logging.WARNING,
        )

    def _starting(self, started: ev.ExecutionStarted, common: dict[str, Any], *, is_replay: bool) -> None:
        self.emit(
            "FunctionStarting",
            "Started",
            "started",
            is_replay=is_replay,
            input=self.payload(started.input),
            **common,
        )

    def _event(
        self,
        event: ev.HistoryEvent,
        name: str,
        common: dict[str, Any],
        *,
        is_replay: bool,
        started: ev.ExecutionStarted | None = None,
        terminated: ev.ExecutionTerminated | None = None,
        now: datetime | None = None,
    ) -> None:
        if isinstance(event, (ev.TaskScheduled, ev.SubOrchestrationInstanceCreated)):
            kind = FunctionType.ACTIVITY if isinstance(event, ev.TaskScheduled) else FunctionType.ORCHESTRATOR
            self.emit(
                "FunctionScheduled",
                "Scheduled",
                "scheduled",
                **{**common, "function_name": event.name, "function_type": kind},
                is_replay=is_replay,
                reason=name,  # as the extension: the orchestrator that scheduled it
                taskEventId=event.event_id,
            )
        elif isinstance(event, ev.EventRaised):
            self.emit(
                "ExternalEventRaised",
                "ExternalEventRaised",
                f"received a '{event.name}' event",
                **common,
                is_replay=is_replay,
                eventName=event.name,
                input=self.payload(event.input),
            )
        elif isinstance(event, ev.TimerFired):
            self.emit(
                "TimerExpired",
                "TimerExpired",
                f"was resumed by a timer scheduled for '{event.fire_at.isoformat()}'",
                **common,
                is_replay=is_replay,
                expirationTime=event.fire_at.isoformat(),
                taskEventId=event.timer_id,
            )
        elif isinstance(event, (ev.ExecutionCompleted, ev.ContinueAsNew)) and started is not None:
            self._completed(event, common, started, terminated, now)

    def _completed(
        self,
        event: ev.ExecutionCompleted | ev.ContinueAsNew,
        common: dict[str, Any],
        started: ev.ExecutionStarted,
        terminated: ev.ExecutionTerminated | None,
        now: datetime | None,
    ) -> None:
        end = now or datetime.now(UTC)
        duration = _ms((end - started.timestamp).total_seconds()) if started.timestamp else None
        status = event.orchestration_status
        if status is OrchestrationStatus.FAILED:
            reason = self.failure(event.failure_details, event.result)
            self.emit(
                "FunctionFailed",
                "Failed",
                f"failed with an error. Reason: {reason}",
                **common,
                reason=reason,
                errorType=event.failure_details.error_type if event.failure_details else None,
                runtimeStatus="Failed",
                duration=duration,
                level=logging.ERROR,
            )
        elif status in (OrchestrationStatus.TERMINATED, OrchestrationStatus.CANCELED):
            self.emit(
                "FunctionTerminated",
                "Terminated",
                "was terminated",
                **common,
                reason=self.payload(terminated.input if terminated else event.result),
                runtimeStatus="Terminated",
                duration=duration,
                level=logging.WARNING,
            )
        else:
            continued = status is OrchestrationStatus.CONTINUED_AS_NEW
            self.emit(
                "FunctionCompleted",
                "Completed",
                "completed",
                **common,
                output=self.payload(event.result),
                continuedAsNew=continued,
                runtimeStatus="ContinuedAsNew" if continued else "Completed",
                duration=duration,
            )

    # --- activities ---

    def activity_starting(self, scheduled: ev.TaskScheduled, target: ev.OrchestrationInstance) -> None:
        self.emit(
            "FunctionStarting",
            "Started",
            "started",
            instance_id=target.instance_id,
            execution_id=target.execution_id,
            function_name=scheduled.name,
            function_type=FunctionType.ACTIVITY,
            input=self.payload(scheduled.input),
            taskEventId=scheduled.event_id,
        )

    def activity_finished(
        self,
        scheduled: ev.TaskScheduled,
        target: ev.OrchestrationInstance,
        response: ev.HistoryEvent,
        seconds: float,
    ) -> None:
        metrics.ACTIVITY_DURATION.record(seconds, {"name": scheduled.name})
        if isinstance(response, ev.TaskFailed):
            details = response.failure_details
            metrics.failure("activity", scheduled.name, details.error_type if details else None)
        common: dict[str, Any] = {
            "instance_id": target.instance_id,
            "execution_id": target.execution_id,
            "function_name": scheduled.name,
            "function_type": FunctionType.ACTIVITY,
            "taskEventId": scheduled.event_id,
            "duration": _ms(seconds),
        }
        if isinstance(response, ev.TaskFailed):
            details = response.failure_details
            reason = self.failure(details, response.reason)
            self.emit(
                "FunctionFailed",
                "Failed",
                f"failed with an error. Reason: {reason}",
                **common,
                reason=reason,
                errorType=details.error_type if details else None,
                level=logging.ERROR,
            )
        else:
            result = response.result if isinstance(response, ev.TaskCompleted) else None
            self.emit("FunctionCompleted", "Completed", "completed", **common, output=self.payload(result))

    # --- entities ---

    def operation(
        self,
        *,
        instance_id: str,
        entity_name: str,
        operation_id: str | None,
        operation_name: str,
        input: str | None,
        output: str | None,
        failure: FailureDetails | None,
        seconds: float,
    ) -> None:
        metrics.OPERATION_DURATION.record(seconds, {"name": entity_name})
        if failure is not None:
            metrics.failure("entity", entity_name, failure.error_type)
        common: dict[str, Any] = {
            "instance_id": instance_id,
            "function_name": entity_name,
            "function_type": FunctionType.ENTITY,
            "operationId": operation_id,
            "operationName": operation_name,
            "input": self.payload(input),
            "duration": _ms(seconds),
        }
        if failure is not None:
            reason = self.failure(failure)
            self.emit(
                "OperationFailed",
                "Failed",
                f"failed '{operation_name}' operation. Reason: {reason}",
                **common,
                reason=reason,
                errorType=failure.error_type,
                level=logging.ERROR,
            )
        else:
            self.emit(
                "OperationCompleted",
                "Completed",
                f"completed '{operation_name}' operation",
                **common,
                output=self.payload(output),
            )
