"""Value types shared by the engine, the task hub and the clients.

Nothing here does I/O. Enum values follow durabletask's protobuf integers so a gRPC
façade stays a pure translation; the task hub stores the DF PascalCase names.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass, field
from typing import Any


class OrchestrationStatus(enum.IntEnum):
    """Runtime status of an orchestration instance (durabletask's proto values)."""

    RUNNING = 0
    COMPLETED = 1
    CONTINUED_AS_NEW = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    PENDING = 6
    SUSPENDED = 7

    @property
    def table_name(self) -> str:
        """The name stored in the Instances table's ``RuntimeStatus`` column (``Running``...)."""
        return _TABLE_NAMES[self]

    @property
    def wire_value(self) -> int:
        """The integer DurableTask.Core's ``OrchestrationStatus`` enum uses in queue JSON."""
        return _CORE_VALUES[self]

    @classmethod
    def from_table_name(cls, name: str) -> OrchestrationStatus:
        try:
            return _BY_TABLE_NAME[name]
        except KeyError:
            raise ValueError(
                f"unknown RuntimeStatus {name!r}; expected one of {sorted(_BY_TABLE_NAME)}"
            ) from None

    @classmethod
    def from_wire_value(cls, value: int) -> OrchestrationStatus:
        for status, core in _CORE_VALUES.items():
            if core == value:
                return status
        raise ValueError(f"unknown DurableTask.Core OrchestrationStatus {value}")

    @property
    def is_terminal(self) -> bool:
        return self in (
            OrchestrationStatus.COMPLETED,
            OrchestrationStatus.FAILED,
            OrchestrationStatus.TERMINATED,
            OrchestrationStatus.CANCELED,
        )

    def __str__(self) -> str:
        return self.name


_TABLE_NAMES = {
    OrchestrationStatus.RUNNING: "Running",
    OrchestrationStatus.COMPLETED: "Completed",
    OrchestrationStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    OrchestrationStatus.FAILED: "Failed",
    OrchestrationStatus.CANCELED: "Canceled",
    OrchestrationStatus.TERMINATED: "Terminated",
    OrchestrationStatus.PENDING: "Pending",
    OrchestrationStatus.SUSPENDED: "Suspended",
}
_BY_TABLE_NAME = {v: k for k, v in _TABLE_NAMES.items()}
# DurableTask.Core.OrchestrationStatus: Running=0, Completed=1, ContinuedAsNew=2, Failed=3,
# Canceled=4, Terminated=5, Pending=6, Suspended=7 -- the same order as the proto.
_CORE_VALUES = {status: int(status) for status in OrchestrationStatus}


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureDetails:
    """Why an activity, sub-orchestration, entity operation or orchestration failed.

    ``error_type`` is fully qualified (``builtins.ValueError``), as durabletask writes it.
    """

    message: str
    error_type: str
    stack_trace: str | None = None
    inner_failure: FailureDetails | None = None
    is_non_retriable: bool = False
    properties: dict[str, Any] | None = field(default=None, compare=False)

    def is_caused_by(self, error: type[BaseException] | str) -> bool:
        """True if the failure was raised as ``error`` (a class, or a simple/qualified name)."""
        if isinstance(error, str):
            return self.error_type == error or self.error_type.rsplit(".", 1)[-1] == error
        return self.error_type in (qualified_name(error), error.__qualname__)

    def __str__(self) -> str:
        # DurableTask.Core's FailureDetails.ToString(): what the Instances Output column holds.
        return f"{self.error_type}: {self.message}"

    @classmethod
    def from_exception(cls, exc: BaseException, *, _depth: int = 0) -> FailureDetails:
        """Describe ``exc``, with its cause chain (at most 5 deep) as ``inner_failure``."""
        inner = exc.__cause__ or exc.__context__
        return cls(
            message=str(exc),
            error_type=qualified_name(type(exc)),
            stack_trace="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            inner_failure=cls.from_exception(inner, _depth=_depth + 1)
            if inner is not None and inner is not exc and _depth < 5
            else None,
        )


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, the form FailureDetails.error_type uses."""
    return f"{cls.__module__}.{cls.__qualname__}"
