"""Every public durablehub exception, in one tree.

    DurableHubError
    ├── ConfigurationError          bad settings, connection string, hub name, partition count
    │   └── PartitionCountMismatchError
    ├── PayloadError                a value that is not JSON-serializable, or too large
    │   └── PayloadTooLargeError    a payload over max_payload_bytes, a blob over max_decompressed_bytes
    ├── TaskHubNotFoundError        the hub's resources do not exist
    ├── CheckpointConflictError     another worker committed this instance first (sentinel ETag)
    ├── LeaseLostError              a partition lease was taken by another worker
    ├── MalformedMessageError       a queue message that is not a MessageData envelope
    ├── OrchestrationNotFoundError  an operation on an unknown instance
    ├── OrchestrationAlreadyExistsError
    ├── OrchestrationStateError     an operation that makes no sense in the instance's state
    ├── OrchestrationFailedError    OrchestrationState.raise_if_failed() on a Failed instance
    ├── NonDeterminismError         replay diverged from history
    ├── OrchestratorTimeoutError    an episode's orchestrator code ran past the worker's deadline
    ├── EntityOperationTimeoutError an entity operation ran past the worker's deadline
    ├── ActivityTimeoutError        an activity ran past the worker's deadline
    └── TaskFailedError             an activity / sub-orchestration / entity call failed (in orchestrators)

Errors carry the ids they concern as attributes and say what to do.
"""

from __future__ import annotations

from durablehub.models import FailureDetails


class DurableHubError(Exception):
    """Base class of every durablehub error."""


class ConfigurationError(DurableHubError, ValueError):
    """Settings that cannot work: a malformed connection string, an invalid hub name, ..."""


class PartitionCountMismatchError(ConfigurationError):
    """The hub exists with another partition count than the one configured."""

    def __init__(self, task_hub: str, existing: int, configured: int) -> None:
        super().__init__(
            f"task hub {task_hub!r} exists with {existing} partitions, but {configured} are configured; "
            f"set partition_count={existing} (DURABLEHUB_PARTITION_COUNT) or use another hub"
        )
        self.task_hub = task_hub
        self.existing = existing
        self.configured = configured


class PayloadError(DurableHubError, TypeError):
    """A payload (input, output, event data, custom status) that cannot be stored."""


class PayloadTooLargeError(PayloadError):
    """A payload over a configured size limit: ``size`` bytes (at least), ``limit`` allowed."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class StorageAuthenticationError(ConfigurationError):
    """The storage account refused the credentials (HTTP 401/403): a wrong key, SAS or identity."""


class StorageUnreachableError(ConfigurationError):
    """The storage endpoint cannot be reached (refused, unknown host, timed out)."""


class TaskHubNotFoundError(DurableHubError):
    """The task hub's resources do not exist; create it with ``durablehub hub create``.
    ``being_made``: its lease container exists but not yet ``taskhub.json``, which a hub's
    maker writes last (a worker is making it now)."""

    def __init__(self, message: str, *, being_made: bool = False) -> None:
        super().__init__(message)
        self.being_made = being_made


class CheckpointConflictError(DurableHubError):
    """Another writer moved the instance's sentinel row: this worker's episode is void."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"history of instance {instance_id!r} was changed by another worker "
            "(sentinel ETag mismatch); this episode is abandoned"
        )
        self.instance_id = instance_id


class LeaseLostError(DurableHubError):
    """The lease on a partition is no longer ours."""

    def __init__(self, partition_id: str, detail: str = "") -> None:
        super().__init__(f"lease on partition {partition_id!r} was lost{': ' + detail if detail else ''}")
        self.partition_id = partition_id


class MalformedMessageError(DurableHubError, ValueError):
    """A queue message that durablehub cannot read as a ``MessageData`` envelope."""


class OrchestrationNotFoundError(DurableHubError, LookupError):
    """No orchestration instance with that id exists."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"no orchestration instance with id {instance_id!r}")
        self.instance_id = instance_id


class OrchestrationAlreadyExistsError(DurableHubError):
    """An instance with that id exists and the reuse policy does not allow replacing it."""

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(
            f"orchestration instance {instance_id!r} already exists with status {status}; "
            "pass a reuse policy that allows replacing it in that state, or choose another id"
        )
        self.instance_id = instance_id
        self.status = status


class OrchestrationStateError(DurableHubError):
    """An operation that makes no sense in the instance's current state."""

    def __init__(self, message: str, *, instance_id: str | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.status = status


class OrchestrationFailedError(DurableHubError):
    """Raised by ``OrchestrationState.raise_if_failed()``; ``failure_details`` says why."""

    def __init__(self, message: str, failure_details: FailureDetails) -> None:
        super().__init__(message)
        self.failure_details = failure_details


class NonDeterminismError(DurableHubError):
    """The orchestrator, replayed, did something other than its history records."""


class OrchestratorTimeoutError(DurableHubError, TimeoutError):
    """Orchestrator code did not return within the worker's episode deadline: the instance fails."""

    def __init__(self, instance_id: str, name: str, seconds: float) -> None:
        super().__init__(
            f"orchestrator {name!r} of instance {instance_id!r} ran for more than {seconds:g} s in one "
            "episode (orchestrator_timeout_seconds, DURABLEHUB_ORCHESTRATOR_TIMEOUT_SECONDS); "
            "orchestrator code must not block: call an activity, or wait with ctx.create_timer"
        )
        self.instance_id = instance_id
        self.name = name
        self.seconds = seconds


class EntityOperationTimeoutError(DurableHubError, TimeoutError):
    """An entity operation did not return within the worker's deadline: it fails its caller
    (its state changes are not kept) and the entity's next operations run."""

    def __init__(self, instance_id: str, operation: str, seconds: float) -> None:
        super().__init__(
            f"operation {operation!r} of entity {instance_id!r} ran for more than {seconds:g} s "
            "(entity_operation_timeout_seconds, DURABLEHUB_ENTITY_OPERATION_TIMEOUT_SECONDS); its "
            "changes are not kept; do long work in an activity"
        )
        self.instance_id = instance_id
        self.operation = operation
        self.seconds = seconds


class ActivityTimeoutError(DurableHubError, TimeoutError):
    """An activity did not return within the worker's deadline: its task fails (a retry policy
    may run it again)."""

    def __init__(self, name: str, instance_id: str, seconds: float) -> None:
        super().__init__(
            f"activity {name!r} of instance {instance_id!r} ran for more than {seconds:g} s "
            "(activity_timeout_seconds, DURABLEHUB_ACTIVITY_TIMEOUT_SECONDS)"
        )
        self.name = name
        self.instance_id = instance_id
        self.seconds = seconds


class TaskFailedError(DurableHubError):
    """Raised inside an orchestrator when an awaited task failed; ``details`` says why."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details


class PoisonMessageError(DurableHubError):
    """A message was moved to ``{hub}-poison``: it failed every time it was processed."""
