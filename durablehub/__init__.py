"""durablehub: Durable Functions in pure Python on an Azure Storage task hub.

The public names (spec §5). Everything else lives in submodules: ``durablehub.taskhub``
talks to storage, ``durablehub.engine`` replays orchestrations without I/O.
"""

from durablehub.app import App
from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient
from durablehub.engine.entity_calls import EntityLock
from durablehub.entities import DurableEntity, EntityContext, EntityInstanceId
from durablehub.entities.metadata import (
    CleanEntityStorageResult,
    EntityMetadata,
    EntityQuery,
    EntityQueryPage,
)
from durablehub.errors import (
    ActivityTimeoutError,
    CheckpointConflictError,
    ConfigurationError,
    DurableHubError,
    EntityOperationTimeoutError,
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
    PayloadTooLargeError,
    StorageAuthenticationError,
    StorageUnreachableError,
    TaskFailedError,
    TaskHubNotFoundError,
)
from durablehub.models import FailureDetails, OrchestrationStatus
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.unknown import UnknownFunctionStrategy
from durablehub.settings import TaskHubSettings
from durablehub.state import (
    OrchestrationIdReusePolicy,
    OrchestrationQuery,
    OrchestrationState,
    OrchestrationStatePage,
    PurgeResult,
)
from durablehub.task import ActivityContext, OrchestrationContext, RetryPolicy, Task, when_all, when_any
from durablehub.versioning import (
    VersionFailureStrategy,
    VersioningOptions,
    VersionMatchStrategy,
    compare_versions,
)
from durablehub.worker import Worker

__all__ = [
    "ActivityContext",
    "ActivityTimeoutError",
    "App",
    "AsyncDurableClient",
    "CheckpointConflictError",
    "CleanEntityStorageResult",
    "ConfigurationError",
    "DurableClient",
    "DurableEntity",
    "DurableHubError",
    "EntityContext",
    "EntityInstanceId",
    "EntityLock",
    "EntityMetadata",
    "EntityOperationTimeoutError",
    "EntityQuery",
    "EntityQueryPage",
    "FailureDetails",
    "LeaseLostError",
    "MalformedMessageError",
    "NonDeterminismError",
    "OrchestrationAlreadyExistsError",
    "OrchestrationContext",
    "OrchestrationFailedError",
    "OrchestrationIdReusePolicy",
    "OrchestrationNotFoundError",
    "OrchestrationQuery",
    "OrchestrationState",
    "OrchestrationStateError",
    "OrchestrationStatePage",
    "OrchestrationStatus",
    "OrchestratorTimeoutError",
    "PartitionCountMismatchError",
    "PayloadError",
    "PayloadTooLargeError",
    "PurgeResult",
    "RetryPolicy",
    "Sidecar",
    "StorageAuthenticationError",
    "StorageUnreachableError",
    "Task",
    "TaskFailedError",
    "TaskHubNotFoundError",
    "TaskHubSettings",
    "UnknownFunctionStrategy",
    "VersionFailureStrategy",
    "VersionMatchStrategy",
    "VersioningOptions",
    "Worker",
    "WorkerOptions",
    "compare_versions",
    "when_all",
    "when_any",
]


def __getattr__(name: str) -> object:
    # The sidecar needs the 'sidecar' extra (grpcio, durabletask): imported on first use only.
    if name == "Sidecar":
        from durablehub.sidecar import Sidecar

        return Sidecar
    raise AttributeError(f"module 'durablehub' has no attribute {name!r}")
