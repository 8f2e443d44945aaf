"""durablehub: Durable Functions in pure Python on an Azure Storage task hub.

The public names (spec §5). Everything else lives in submodules: ``durablehub.taskhub``
talks to storage, ``durablehub.engine`` replays orchestrations without I/O.
"""

from durablehub.app import App
from durablehub.errors import (
    CheckpointConflictError,
    ConfigurationError,
    DurableHubError,
    LeaseLostError,
    MalformedMessageError,
    NonDeterminismError,
    OrchestrationAlreadyExistsError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
    PartitionCountMismatchError,
    PayloadError,
    TaskFailedError,
    TaskHubNotFoundError,
)
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.settings import TaskHubSettings
from durablehub.task import ActivityContext, OrchestrationContext, RetryPolicy, Task, when_all, when_any

__all__ = [
    "ActivityContext",
    "App",
    "CheckpointConflictError",
    "ConfigurationError",
    "DurableHubError",
    "FailureDetails",
    "LeaseLostError",
    "MalformedMessageError",
    "NonDeterminismError",
    "OrchestrationAlreadyExistsError",
    "OrchestrationContext",
    "OrchestrationNotFoundError",
    "OrchestrationStateError",
    "OrchestrationStatus",
    "PartitionCountMismatchError",
    "PayloadError",
    "RetryPolicy",
    "Task",
    "TaskFailedError",
    "TaskHubNotFoundError",
    "TaskHubSettings",
    "when_all",
    "when_any",
]
