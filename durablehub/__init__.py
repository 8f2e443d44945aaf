"""durablehub: Durable Functions in pure Python on an Azure Storage task hub.

The public names (spec §5). Everything else lives in submodules: ``durablehub.taskhub``
talks to storage, ``durablehub.engine`` replays orchestrations without I/O.
"""

from durablehub.app import App
from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient
from durablehub.errors import (
    CheckpointConflictError,
    ConfigurationError,
    DurableHubError,
    LeaseLostError,
    MalformedMessageError,
    NonDeterminismError,
    OrchestrationAlreadyExistsError,
    OrchestrationFailedError,
    OrchestrationNotFoundError,
    OrchestrationStateError,
    OrchestratorTimeoutError,
    PartitionCountMismatchError,
    PayloadError,
    TaskFailedError,
    TaskHubNotFoundError,
)
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.options import WorkerOptions
from durablehub.settings import TaskHubSettings
from durablehub.state import OrchestrationIdReusePolicy, OrchestrationState
from durablehub.task import ActivityContext, OrchestrationContext, RetryPolicy, Task, when_all, when_any
from durablehub.worker import Worker

__all__ = [
    "ActivityContext",
    "App",
    "AsyncDurableClient",
    "CheckpointConflictError",
    "ConfigurationError",
    "DurableClient",
    "DurableHubError",
    "FailureDetails",
    "LeaseLostError",
    "MalformedMessageError",
    "NonDeterminismError",
    "OrchestrationAlreadyExistsError",
    "OrchestrationContext",
    "OrchestrationFailedError",
    "OrchestrationIdReusePolicy",
    "OrchestrationNotFoundError",
    "OrchestrationState",
    "OrchestrationStateError",
    "OrchestrationStatus",
    "OrchestratorTimeoutError",
    "PartitionCountMismatchError",
    "PayloadError",
    "RetryPolicy",
    "Task",
    "TaskFailedError",
    "TaskHubNotFoundError",
    "TaskHubSettings",
    "Worker",
    "WorkerOptions",
    "when_all",
    "when_any",
]
