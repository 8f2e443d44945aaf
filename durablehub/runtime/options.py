"""WorkerOptions: concurrency, leases, polling and caching of a worker, from the environment.

Every field can be set as ``DURABLEHUB_<FIELD>`` (e.g. ``DURABLEHUB_MAX_CONCURRENT_ACTIVITIES``).
Defaults favour fast takeover over request economy: a dead worker's partitions are processed
again within ``lease_duration + balance_interval`` seconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from durablehub.runtime.unknown import UnknownFunctionStrategy
from durablehub.versioning import VersionFailureStrategy, VersioningOptions, VersionMatchStrategy


class WorkerOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DURABLEHUB_", extra="ignore", frozen=True)

    max_concurrent_activities: int = Field(default=16, ge=1)
    max_concurrent_orchestrations: int = Field(default=32, ge=1)
    lease_duration_seconds: int = Field(default=15, ge=15, le=60)  # Azure blob lease bounds
    lease_renew_seconds: float = Field(default=4.0, gt=0)
    balance_interval_seconds: float = Field(default=3.0, gt=0)
    control_queue_batch_size: int = Field(default=32, ge=1, le=32)
    control_visibility_seconds: int = Field(default=20, ge=5)
    activity_visibility_seconds: int = Field(default=30, ge=5)
    min_poll_interval_seconds: float = Field(default=0.05, gt=0)
    max_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # For this long after a queue's last batch it is polled every min_poll_interval_seconds
    # instead of backing off (polling.IdlePoller): a start from another process is picked up
    # sooner under load, for up to 1/min_poll_interval_seconds receives a second per queue
    # while messages keep coming. 0 (the default): back off at once, as the reference does.
    fast_poll_seconds: float = Field(default=0.0, ge=0)
    orchestration_cache_size: int = Field(default=1000, ge=0)
    abandon_delay_seconds: int = Field(default=1, ge=0)
    max_early_message_dequeues: int = Field(default=20, ge=1)
    # A message dequeued this many times without being completed (its episode or activity
    # crashed the worker or failed every time) goes to {hub}-poison instead of being tried
    # again. 10, like the reference's own give-up point for start messages (DequeueCount >= 10):
    # far above what a worker restart or a partition move costs, low enough that a crashing
    # message stops crashing workers within minutes.
    max_dequeue_count: int = Field(default=10, ge=1)
    # Orchestrator code that runs longer in one episode (it blocks) fails its instance.
    orchestrator_timeout_seconds: float = Field(default=60.0, gt=0)
    # An entity operation that runs longer fails its caller; the entity goes on with the next.
    entity_operation_timeout_seconds: float = Field(default=60.0, gt=0)
    # An activity that runs longer fails its task (Functions' default functionTimeout on
    # Premium and Dedicated plans); its thread, if it blocks, is left behind.
    activity_timeout_seconds: float = Field(default=1800.0, gt=0)
    # How long a partition being handed over waits for its in-flight episodes.
    drain_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long a stopping worker waits for running activities; the rest run again elsewhere.
    activity_drain_timeout_seconds: float = Field(default=30.0, gt=0)
    # Versioning (durablehub.versioning): DURABLEHUB_VERSION, DURABLEHUB_DEFAULT_VERSION,
    # DURABLEHUB_VERSION_MATCH_STRATEGY (none, strict, current_or_older),
    # DURABLEHUB_VERSION_FAILURE_STRATEGY (reject, fail).
    version: str | None = None
    default_version: str | None = None
    version_match_strategy: VersionMatchStrategy = VersionMatchStrategy.NONE
    version_failure_strategy: VersionFailureStrategy = VersionFailureStrategy.REJECT
    # An orchestration, activity or entity the App does not register (durablehub.runtime.unknown):
    # fail it (the default) or reject it (hand it back for a worker that has the code).
    unknown_function_strategy: UnknownFunctionStrategy = UnknownFunctionStrategy.FAIL

    @field_validator(
        "version_match_strategy", "version_failure_strategy", "unknown_function_strategy", mode="before"
    )
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def versioning(self) -> VersioningOptions:
        return VersioningOptions(
            version=self.version or None,
            default_version=self.default_version or None,
            match_strategy=self.version_match_strategy,
            failure_strategy=self.version_failure_strategy,
        )

    def with_versioning(self, versioning: VersioningOptions) -> WorkerOptions:
        """These options with ``versioning``'s fields in place of the versioning ones."""
        return self.model_copy(
            update={
                "version": versioning.version,
                "default_version": versioning.default_version,
                "version_match_strategy": versioning.match_strategy,
                "version_failure_strategy": versioning.failure_strategy,
            }
        )

    @property
    def lease_duration(self) -> timedelta:
        return timedelta(seconds=self.lease_duration_seconds)

    @property
    def control_visibility(self) -> timedelta:
        return timedelta(seconds=self.control_visibility_seconds)

    @property
    def activity_visibility(self) -> timedelta:
        return timedelta(seconds=self.activity_visibility_seconds)
