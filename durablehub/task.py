"""The programming model: what orchestrator and activity code sees.

An orchestrator is a generator function ``(ctx: OrchestrationContext, input)`` that yields
tasks and returns its output::

    def process_order(ctx: OrchestrationContext, order: dict):
        receipt = yield ctx.call_activity("ChargeCreditCard", input=order)
        results = yield when_all([ctx.call_activity("Ship", input=i) for i in order["items"]])
        return receipt

Orchestrator code is replayed from history, so it must be deterministic: take the time from
``ctx.current_utc_datetime``, ids from ``ctx.new_uuid()``, and do I/O only in activities.
Names and keyword arguments are durabletask-python's (``durabletask.task``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from durablehub.errors import NonDeterminismError, TaskFailedError

if TYPE_CHECKING:  # the entity modules import this one
    from durablehub.engine.entity_calls import EntityLock
    from durablehub.entities.entity_id import EntityInstanceId

__all__ = [
    "Activity",
    "ActivityContext",
    "CompletableTask",
    "CompositeTask",
    "NonDeterminismError",
    "OrchestrationContext",
    "Orchestrator",
    "ReplaySafeLogger",
    "RetryPolicy",
    "RetryableTask",
    "Task",
    "TaskFailedError",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "get_name",
    "when_all",
    "when_any",
]

T = TypeVar("T")

# Set on functions by ``App`` decorators so a call with a function reference uses the
# registered name (``@app.activity(name="Charge")``), not ``__name__``.
REGISTERED_NAME_ATTRIBUTE = "__durablehub_name__"


def get_name(fn: Callable[..., Any] | type | str) -> str:
    """The name a call uses for ``fn``: its registered name, else ``__name__``.

    Raises:
        ValueError: ``fn`` is a lambda (it has no usable name).
    """
    if isinstance(fn, str):
        return fn
    registered = getattr(fn, REGISTERED_NAME_ATTRIBUTE, None)
    if isinstance(registered, str):
        return registered
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise ValueError(
            f"cannot take a name from {fn!r}; register it with a name or pass the name as a string"
        )
    return name


class Task(ABC, Generic[T]):
    """Something an orchestrator can ``yield``; the engine completes it from history."""

    def __init__(self) -> None:
        self._is_complete = False
        self._result: Any = None
        self._exception: TaskFailedError | None = None
        self._parents: list[CompositeTask[Any]] = []

    @property
    def is_complete(self) -> bool:
        """True once the task has a result or a failure."""
        return self._is_complete

    @property
    def is_completed(self) -> bool:
        """Durable Functions' name of ``is_complete``."""
        return self._is_complete

    @property
    def is_failed(self) -> bool:
        """True if the task completed with a failure."""
        return self._exception is not None

    @property
    def result(self) -> T:
        """Alias of ``get_result()``."""
        return self.get_result()

    def get_result(self) -> T:
        """The task's result.

        Raises:
            ValueError: the task has not completed.
            TaskFailedError: the task failed.
        """
        if not self._is_complete:
            raise ValueError("the task has not completed")
        if self._exception is not None:
            raise self._exception
        result: T = self._result
        return result

    def get_exception(self) -> TaskFailedError:
        """The failure of a failed task.

        Raises:
            ValueError: the task has not failed.
        """
        if self._exception is None:
            raise ValueError("the task has not failed")
        return self._exception

    def _never_completes(self) -> bool:
        """True if waiting on this task would never end: a cancelled timer, or a composite that
        needs one (the engine fails the instance rather than leave it waiting silently)."""
        return False

    def _settle(self, result: Any, exception: TaskFailedError | None) -> None:
        if self._is_complete:
            raise ValueError("the task has already completed")
        self._result = result
        self._exception = exception
        self._is_complete = True
        for parent in self._parents:
            parent._on_child_completed(self)


class CompletableTask(Task[T]):
    """A task completed by one history event (activity, sub-orchestration, timer, event)."""

    def __init__(self, *, result_type: Any = None) -> None:
        super().__init__()
        self._result_type = result_type

    @property
    def result_type(self) -> Any:
        """The type the result is decoded into (``None``: plain JSON values)."""
        return self._result_type

    def complete(self, result: T) -> None:
        """Complete with ``result`` (called by the engine)."""
        self._settle(result, None)

    def fail(self, error: TaskFailedError) -> None:
        """Complete with a failure (called by the engine)."""
        self._settle(None, error)


class TimerTask(CompletableTask[None]):
    """Completes when the durable timer fires (after every step of a chained long timer).

    ``cancel()`` is Durable Functions' timeout pattern (``if not timeout.is_completed:
    timeout.cancel()``): the orchestration stops caring about the timer and may finish without
    waiting for it. Nothing is recorded (the timer was created and still fires; replay calls
    ``cancel()`` at the same point again), so a cancelled timer simply never completes: its
    ``TimerFired`` is ignored and no further step of a long timer is created. Yielding it, or a
    ``when_all`` (or all-timer ``when_any``) that needs it, fails the instance saying so.
    """

    def __init__(self, fire_at: datetime) -> None:
        super().__init__()
        self._fire_at = fire_at
        self._cancelled = False

    @property
    def fire_at(self) -> datetime:
        """When the timer fires, as naive UTC."""
        return self._fire_at

    @property
    def is_cancelled(self) -> bool:
        """True once ``cancel()`` has cancelled the timer."""
        return self._cancelled

    def cancel(self) -> bool:
        """Stop waiting for the timer. Returns False, changing nothing, if it has already
        fired (durabletask's ``cancel``; Durable Functions raises there, and its samples check
        ``is_completed`` first, so both styles work)."""
        if self._is_complete:
            return False
        self._cancelled = True
        return True

    def _never_completes(self) -> bool:
        return self._cancelled and not self._is_complete


class RetryableTask(CompletableTask[T]):
    """An activity or sub-orchestration call retried by ``retry_policy`` before it fails."""

    def __init__(self, retry_policy: RetryPolicy, *, result_type: Any = None) -> None:
        super().__init__(result_type=result_type)
        self._retry_policy = retry_policy

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy


class CompositeTask(Task[T]):
    """A task over other tasks (``when_all``, ``when_any``)."""

    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        super().__init__()
        for child in tasks:
            if not isinstance(child, Task):
                raise TypeError(f"expected tasks, got {type(child).__qualname__}: {child!r}")
        self._tasks: list[Task[Any]] = list(tasks)
        self._completed = 0
        for child in self._tasks:
            child._parents.append(self)
        for child in self._tasks:
            if child.is_complete and not self._is_complete:
                self._on_child_completed(child)

    def get_tasks(self) -> list[Task[Any]]:
        return list(self._tasks)

    @abstractmethod
    def _on_child_completed(self, child: Task[Any]) -> None: ...


class WhenAllTask(CompositeTask[list[T]]):
    """Completes when every child has; its result is the children's results in order.

    If children failed, it fails with the first failure, but only after all children have
    finished (as .NET's ``Task.WhenAll`` and durabletask 1.8 do).
    """

    def __init__(self, tasks: Sequence[Task[T]]) -> None:
        self._first_failure: TaskFailedError | None = None  # read while the base class counts done children
        super().__init__(tasks)
        if not self._tasks:
            self._settle([], None)

    def _on_child_completed(self, child: Task[Any]) -> None:
        if self._is_complete:
            return
        self._completed += 1
        if child.is_failed and self._first_failure is None:
            self._first_failure = child.get_exception()  # first in completion order
        if self._completed < len(self._tasks):
            return
        if self._first_failure is not None:
            self._settle(None, self._first_failure)
        else:
            self._settle([t.get_result() for t in self._tasks], None)

    def _never_completes(self) -> bool:
        return not self._is_complete and any(t._never_completes() for t in self._tasks)


class WhenAnyTask(CompositeTask[Task[T]]):
    """Completes when the first child does; its result is that child task (not its value)."""

    def __init__(self, tasks: Sequence[Task[T]]) -> None:
        if not tasks:
            raise ValueError("when_any needs at least one task")
        super().__init__(tasks)

    def _on_child_completed(self, child: Task[Any]) -> None:
        if not self._is_complete:
            self._settle(child, None)

    def _never_completes(self) -> bool:  # another child may still complete it
        return not self._is_complete and all(t._never_completes() for t in self._tasks)


def when_all(tasks: Sequence[Task[T]]) -> WhenAllTask[T]:
    """A task completing with the list of all results, in order (see ``WhenAllTask``)."""
    return WhenAllTask(tasks)


def when_any(tasks: Sequence[Task[T]]) -> WhenAnyTask[T]:
    """A task completing with the first task of ``tasks`` to finish; the others keep running."""
    return WhenAnyTask(tasks)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a failed activity or sub-orchestration call is retried, with durable timers.

    After attempt ``n`` fails, the next attempt waits ``first_retry_interval *
    backoff_coefficient ** (n - 1)``, capped at ``max_retry_interval``. There are at most
    ``max_number_of_attempts`` attempts (the first included), and none starts once
    ``retry_timeout`` has passed since the first one (orchestration time).
    """

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None

    def __post_init__(self) -> None:
        _check_interval("first_retry_interval", self.first_retry_interval, required=True)
        _check_interval("max_retry_interval", self.max_retry_interval, required=False)
        _check_interval("retry_timeout", self.retry_timeout, required=False)
        attempts = self.max_number_of_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"max_number_of_attempts must be an int >= 1, got {attempts!r}")
        if self.backoff_coefficient is None:  # durabletask accepts None as "no backoff"
            object.__setattr__(self, "backoff_coefficient", 1.0)
        coefficient = self.backoff_coefficient
        if isinstance(coefficient, bool) or not isinstance(coefficient, (int, float)) or not coefficient >= 1:
            raise ValueError(f"backoff_coefficient must be a number >= 1, got {coefficient!r}")

    def delay_before(self, attempt: int) -> timedelta:
        """The wait before attempt number ``attempt`` (2 for the first retry)."""
        if attempt < 2:
            raise ValueError(f"attempt must be >= 2 (the first attempt does not wait), got {attempt}")
        try:
            delay = self.first_retry_interval * (self.backoff_coefficient ** (attempt - 2))
        except OverflowError:
            delay = timedelta.max
        if self.max_retry_interval is not None:
            delay = min(delay, self.max_retry_interval)
        return delay

    def next_delay(
        self, *, attempts_made: int, first_attempt_at: datetime, now: datetime
    ) -> timedelta | None:
        """The wait before the next attempt, or ``None`` when no attempt is left."""
        if attempts_made >= self.max_number_of_attempts:
            return None
        if self.retry_timeout is not None and now >= first_attempt_at + self.retry_timeout:
            return None
        return self.delay_before(attempts_made + 1)


def _check_interval(name: str, value: object, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, timedelta):
        raise ValueError(f"{name} must be a timedelta, got {value!r}")
    if value < timedelta(0):
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityContext:
    """What an activity learns about the call that started it."""

    orchestration_id: str
    """Instance id of the orchestration that scheduled the activity."""
    task_id: int
    """The call's sequence number, unique within that orchestration's execution."""
    task_name: str
    """The activity's registered name."""


class ReplaySafeLogger(logging.LoggerAdapter):
    """A logger that stays silent while the orchestrator is replaying history."""

    def __init__(self, logger: logging.Logger, is_replaying: Callable[[], bool]) -> None:
        super().__init__(logger, {})
        self._is_replaying = is_replaying

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return not self._is_replaying() and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


class OrchestrationContext(ABC):
    """The orchestrator's handle on its instance; every method is replay-safe."""

    @property
    @abstractmethod
    def instance_id(self) -> str:
        """This orchestration's instance id."""

    @property
    @abstractmethod
    def parent_instance_id(self) -> str | None:
        """The parent's instance id for a sub-orchestration, else ``None``."""

    @property
    @abstractmethod
    def version(self) -> str | None:
        """The version the instance was started with (``None`` if it was started without one)."""

    @property
    @abstractmethod
    def current_utc_datetime(self) -> datetime:
        """The episode's time as naive UTC: deterministic, taken from history."""

    @property
    @abstractmethod
    def is_replaying(self) -> bool:
        """True while the code re-runs past history (side effects already happened)."""

    @abstractmethod
    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        tags: dict[str, str] | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        """Schedule an activity (a function or a registered name); yield the task for its result."""

    @abstractmethod
    def call_sub_orchestrator(
        self,
        orchestrator: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        version: str | None = None,
        return_type: Any = None,
    ) -> CompletableTask[Any]:
        """Start a child orchestration; yield the task for its output.

        Without ``instance_id`` the child gets ``"{instance_id}:{call id as 4 hex digits}"``.
        Without ``version`` it gets the worker's ``default_version`` (not this instance's).
        """

    @abstractmethod
    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        """A durable timer firing at ``fire_at``, or ``fire_at`` after ``current_utc_datetime``.

        Timezone-aware datetimes are converted to UTC; naive ones are taken as UTC.
        """

    @abstractmethod
    def wait_for_external_event(self, name: str, *, data_type: Any = None) -> CompletableTask[Any]:
        """A task completing with the data of the next event ``name`` (case-insensitive).

        Events that arrived before the wait are buffered and consumed first in, first out.
        """

    @abstractmethod
    def send_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Raise event ``event_name`` on another orchestration instance (one-way)."""

    @abstractmethod
    def continue_as_new(
        self,
        new_input: Any,
        *,
        save_events: bool = False,
        new_version: str | None = None,
        new_trace: bool = False,
    ) -> None:
        """Restart this instance with a fresh history and ``new_input`` when the code returns.

        With ``save_events``, external events that arrived but were not consumed are
        delivered to the new generation; otherwise they are dropped. ``new_version`` starts
        the new generation at that version (default: this one's); the worker's versioning
        policy applies to it as to any start. With ``new_trace``, the new generation starts
        a trace of its own (DurableTask.Core's ``ContinueAsNewTraceBehavior.StartNewTrace``)
        instead of going on in this one's orchestration span.
        """

    @abstractmethod
    def is_patched(self, name: str) -> bool:
        """Whether this execution takes the code path of patch ``name``.

        True when the code first asks outside replay (a new execution, or new events), and
        recorded in history; on replay True only if history recorded it. The answer is kept for
        the rest of the execution; ``continue_as_new`` starts afresh.
        """

    @abstractmethod
    def set_custom_status(self, custom_status: Any) -> None:
        """Publish a JSON value on the instance's status (``None`` clears it)."""

    @abstractmethod
    def call_entity(
        self, entity: EntityInstanceId | str, operation: str, input: Any = None, *, return_type: Any = None
    ) -> Task[Any]:
        """Run ``operation`` on an entity; yield the task for its result. An exception in the
        operation fails the task with ``TaskFailedError``."""

    @abstractmethod
    def signal_entity(
        self,
        entity: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | None = None,
    ) -> None:
        """Send a one-way operation to an entity (delivered at ``signal_time`` if given)."""

    @abstractmethod
    def lock_entities(self, entities: Sequence[EntityInstanceId | str]) -> Task[EntityLock]:
        """Lock entities for a critical section: ``with (yield ctx.lock_entities([a, b])): ...``.

        The locks are taken one by one in a fixed (sorted) order, so two critical sections never
        deadlock; they are released when the ``with`` block ends or the orchestration ends.
        """

    @abstractmethod
    def new_uuid(self) -> str:
        """A UUID that is the same on every replay (UUIDv5 over instance id, time, counter)."""

    def create_replay_safe_logger(self, logger: logging.Logger) -> ReplaySafeLogger:
        """Wrap ``logger`` so it logs nothing while the orchestrator replays."""
        return ReplaySafeLogger(logger, lambda: self.is_replaying)


Orchestrator: TypeAlias = Callable[[OrchestrationContext, Any], Generator[Task[Any], Any, Any] | Any]
Activity: TypeAlias = Callable[[ActivityContext, Any], Any]
