"""What the orchestration clients return and take: instance state and the id-reuse policy.

``OrchestrationState`` mirrors durabletask-python's (same field names and accessors), plus the
columns the Instances table adds (execution id, scheduled start, version, tags, completed time).
Payloads stay JSON text until an accessor decodes them, so reading a state never fails on a
payload the caller does not look at.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durablehub.engine.codec import JSON_CODEC
from durablehub.errors import OrchestrationFailedError
from durablehub.models import FailureDetails, OrchestrationStatus

__all__ = [
    "OrchestrationIdReusePolicy",
    "OrchestrationQuery",
    "OrchestrationState",
    "OrchestrationStatePage",
    "PurgeResult",
]

_TERMINAL = frozenset(status for status in OrchestrationStatus if status.is_terminal)
_REPR_PAYLOAD_CHARS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestrationState:
    """One orchestration instance as its Instances row (and, for failures, history) describes it.

    ``serialized_*`` are the JSON texts as stored, None when absent or not fetched
    (``fetch_payloads=False``). A failed instance has ``failure_details`` and no output.
    """

    instance_id: str
    name: str
    runtime_status: OrchestrationStatus
    created_at: datetime
    last_updated_at: datetime
    serialized_input: str | None = None
    serialized_output: str | None = None
    serialized_custom_status: str | None = None
    failure_details: FailureDetails | None = None
    execution_id: str | None = None
    scheduled_start_time: datetime | None = None
    completed_at: datetime | None = None
    version: str | None = None
    tags: dict[str, str] | None = field(default=None, compare=False)

    def get_input(self, expected_type: Any = None) -> Any:
        """The input, decoded (into ``expected_type`` if given: a dataclass, a pydantic model, ...).

        Raises:
            PayloadError: the stored text is not JSON or does not fit ``expected_type``.
        """
        return JSON_CODEC.decode(self.serialized_input, expected_type, what=self._what("input"))

    def get_output(self, expected_type: Any = None) -> Any:
        """The output (None until the instance completes), decoded like ``get_input``."""
        return JSON_CODEC.decode(self.serialized_output, expected_type, what=self._what("output"))

    def get_custom_status(self, expected_type: Any = None) -> Any:
        """The custom status the orchestrator last set, decoded like ``get_input``."""
        return JSON_CODEC.decode(
            self.serialized_custom_status, expected_type, what=self._what("custom status")
        )

    def raise_if_failed(self) -> None:
        """Raise ``OrchestrationFailedError`` if the instance failed; do nothing otherwise."""
        if self.runtime_status is OrchestrationStatus.FAILED or self.failure_details is not None:
            details = self.failure_details or FailureDetails(message="(no details)", error_type="")
            raise OrchestrationFailedError(
                f"orchestration {self.instance_id!r} failed: {details.error_type}: {details.message}",
                details,
            )

    def _what(self, payload: str) -> str:
        return f"{payload} of orchestration instance {self.instance_id!r}"

    def __repr__(self) -> str:
        # Payloads can be megabytes: show their start only (logs and tracebacks print states).
        def short(text: str | None) -> str:
            if text is None or len(text) <= _REPR_PAYLOAD_CHARS:
                return repr(text)
            return repr(text[:_REPR_PAYLOAD_CHARS] + "...") + f" ({len(text)} chars)"

        return (
            f"OrchestrationState(instance_id={self.instance_id!r}, name={self.name!r}, "
            f"runtime_status={self.runtime_status.name}, created_at={self.created_at.isoformat()}, "
            f"last_updated_at={self.last_updated_at.isoformat()}, "
            f"serialized_input={short(self.serialized_input)}, "
            f"serialized_output={short(self.serialized_output)}, "
            f"serialized_custom_status={short(self.serialized_custom_status)}, "
            f"failure_details={self.failure_details!r}, execution_id={self.execution_id!r})"
        )


@dataclass(frozen=True, slots=True)
class OrchestrationIdReusePolicy:
    """In which statuses an existing instance may be replaced by ``schedule_new_orchestration``.

    The default replaces an instance that has finished (Completed, Failed, Terminated,
    Canceled) and refuses one that is Pending, Running, Suspended or ContinuedAsNew with
    ``OrchestrationAlreadyExistsError``: the singleton pattern ("start it unless it is
    running") is the default. ``OrchestrationIdReusePolicy(replaceable_statuses=())``
    refuses any existing instance.

    Only finished statuses can be listed. Replacing a live instance would race the worker
    running it (its next checkpoint merges the old generation over the new Pending row);
    terminate it and wait for completion first.
    """

    replaceable_statuses: frozenset[OrchestrationStatus] = _TERMINAL

    def __post_init__(self) -> None:
        statuses = self.replaceable_statuses
        if isinstance(statuses, (str, OrchestrationStatus)) or not isinstance(statuses, Iterable):
            raise TypeError(
                f"replaceable_statuses must be a collection of OrchestrationStatus, got {statuses!r}"
            )
        checked = frozenset(statuses)
        wrong_type = [s for s in checked if not isinstance(s, OrchestrationStatus)]
        if wrong_type:
            raise TypeError(f"replaceable_statuses must hold OrchestrationStatus members, got {wrong_type!r}")
        live = sorted(s.name for s in checked - _TERMINAL)
        if live:
            raise ValueError(
                f"cannot replace an instance that is {', '.join(live)}: only finished instances "
                f"({', '.join(sorted(s.name for s in _TERMINAL))}) can be replaced; "
                "terminate the instance and wait for it to finish first"
            )
        object.__setattr__(self, "replaceable_statuses", checked)

    def allows_replacing(self, status: OrchestrationStatus) -> bool:
        return status in self.replaceable_statuses


@dataclass(frozen=True, slots=True, kw_only=True)
class OrchestrationQuery:
    """Which instances ``query_orchestrations`` / ``get_all_orchestration_states`` return.

    Every filter is optional and they combine with "and": created between
    ``created_time_from`` and ``created_time_to`` (inclusive; naive means UTC), in one of
    ``runtime_status``, with an id starting with ``instance_id_prefix``. ``page_size`` rows per
    page (1 to 1000, the table service's page limit); ``continuation_token`` is the opaque
    string a previous page returned. Inputs, outputs and custom status are fetched only with
    ``fetch_inputs_and_outputs`` (they can be large). ``name`` selects one orchestrator
    name; ``versions`` the instances started with one of those versions (exactly as stored;
    ``None`` or ``""`` for instances started without one).
    """

    created_time_from: datetime | None = None
    created_time_to: datetime | None = None
    runtime_status: Collection[OrchestrationStatus] | None = None
    instance_id_prefix: str | None = None
    page_size: int = 100
    fetch_inputs_and_outputs: bool = False
    continuation_token: str | None = None
    name: str | None = None
    versions: Collection[str | None] | None = None

    def __post_init__(self) -> None:
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(f"name must be a non-empty string, got {self.name!r}")
        if self.versions is not None:
            if isinstance(self.versions, str) or not isinstance(self.versions, Iterable):
                raise TypeError(f"versions must be a collection of strings, got {self.versions!r}")
            bad = [v for v in self.versions if v is not None and not isinstance(v, str)]
            if bad:
                raise TypeError(f"versions must hold strings (None: unversioned), got {bad!r}")
            object.__setattr__(self, "versions", frozenset(v or "" for v in self.versions))
        for name in ("created_time_from", "created_time_to"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, datetime):
                raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
        statuses = self.runtime_status
        if statuses is not None:
            if isinstance(statuses, (str, OrchestrationStatus)) or not isinstance(statuses, Iterable):
                raise TypeError(
                    f"runtime_status must be a collection of OrchestrationStatus, got {statuses!r}"
                )
            checked = frozenset(statuses)
            wrong = [s for s in checked if not isinstance(s, OrchestrationStatus)]
            if wrong:
                raise TypeError(f"runtime_status must hold OrchestrationStatus members, got {wrong!r}")
            object.__setattr__(self, "runtime_status", checked)
        if self.instance_id_prefix is not None and not isinstance(self.instance_id_prefix, str):
            raise TypeError(
                f"instance_id_prefix must be a string, got {type(self.instance_id_prefix).__name__}"
            )
        if (
            isinstance(self.page_size, bool)
            or not isinstance(self.page_size, int)
            or not 1 <= self.page_size <= 1000
        ):
            raise ValueError(f"page_size must be an integer from 1 to 1000, got {self.page_size!r}")
        if self.continuation_token is not None and not isinstance(self.continuation_token, str):
            raise TypeError("continuation_token must be the string a previous page returned")


@dataclass(frozen=True, slots=True)
class OrchestrationStatePage:
    """One page of a query; ``continuation_token`` is None on the last page."""

    items: list[OrchestrationState]
    continuation_token: str | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many instances a purge removed; ``is_complete`` is False if some were left (see the log)."""

    deleted_instance_count: int
    is_complete: bool = True
