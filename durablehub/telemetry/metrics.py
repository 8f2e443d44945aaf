"""Metrics with the OpenTelemetry metrics API, and a Prometheus endpoint for the CLI processes.

Instruments are made once, on the API's global meter: until a MeterProvider is set (the
``--metrics-port`` of ``durablehub worker``, ``serve`` and ``sidecar`` sets one with a
Prometheus reader) each recording is a no-op call, and observable gauges are never called.
Queue depths and ages are read only when a reader collects them (a scrape), never on the hot
path: per queue, one properties request, and one peek when it holds messages.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from durablehub.settings import TaskHubSettings

_LOG = logging.getLogger("durablehub.metrics")
_METER = metrics.get_meter("durablehub")

EPISODES_ACTIVE = _METER.create_up_down_counter(
    "durablehub.orchestration.episodes.active", unit="{episode}", description="Orchestration episodes running"
)
ACTIVITIES_ACTIVE = _METER.create_up_down_counter(
    "durablehub.activities.active", unit="{activity}", description="Activities running"
)
# Seconds: the SDK's default buckets are for milliseconds.
_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]
EPISODE_DURATION = _METER.create_histogram(
    "durablehub.orchestration.episode.duration",
    unit="s",
    explicit_bucket_boundaries_advisory=_BUCKETS,
    description="Orchestration episodes, from messages in to history committed, by orchestrator name",
)
ACTIVITY_DURATION = _METER.create_histogram(
    "durablehub.activity.duration",
    unit="s",
    description="Activity runs, by activity name",
    explicit_bucket_boundaries_advisory=_BUCKETS,
)
OPERATION_DURATION = _METER.create_histogram(
    "durablehub.entity.operation.duration",
    unit="s",
    description="Entity operations, by entity name",
    explicit_bucket_boundaries_advisory=_BUCKETS,
)
FAILURES = _METER.create_counter(
    "durablehub.failures",
    unit="{failure}",
    description="Failed orchestrations, activities and entity operations, by type, name and error type",
)
LEASE_TAKEOVERS = _METER.create_counter(
    "durablehub.partitions.takeovers",
    unit="{lease}",
    description="Partition leases taken from another worker (expired, or stolen after a handover request)",
)
POISON_MOVES = _METER.create_counter(
    "durablehub.poison.moves",
    unit="{message}",
    description="Messages moved to the poison queue, by source queue",
)
STORAGE_REQUESTS = _METER.create_counter(
    "durablehub.storage.requests", unit="{request}", description="Storage requests, by operation"
)


def failure(kind: str, name: str, error_type: str | None) -> None:
    FAILURES.add(1, {"type": kind, "name": name, "error_type": error_type or "unknown"})


# --- observed on collection only ---


class PartitionOwner(Protocol):
    worker_id: str
    owned: dict[str, Any]


_owners: weakref.WeakSet[Any] = weakref.WeakSet()
_probes: set[QueueProbe] = set()  # kept until closed: the CLI starts one and forgets it


def watch_partitions(owner: PartitionOwner) -> None:
    """Report ``len(owner.owned)`` as the partitions ``owner.worker_id`` owns (while it lives)."""
    _owners.add(owner)


def _observe_partitions(options: CallbackOptions) -> Iterator[Observation]:
    for owner in list(_owners):
        yield Observation(len(owner.owned), {"worker": owner.worker_id})


class QueueProbe:
    """Approximate depth and age of the oldest visible message of a hub's control queues and
    work-item queue, read with its own synchronous clients (collection runs on the reader's
    thread, not the worker's event loop). One reading serves both gauges of one collection."""

    def __init__(self, settings: TaskHubSettings, *, max_age_seconds: float = 1.0) -> None:
        from durablehub.taskhub.hub import TaskHub

        self._hub = TaskHub(settings)
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._readings: list[tuple[str, int, float]] = []
        _probes.add(self)

    def readings(self) -> list[tuple[str, int, float]]:
        """(queue, approximate depth, age in seconds of its oldest visible message), per queue."""
        with self._lock:
            if time.monotonic() - self._read_at >= self._max_age:
                self._readings = list(self._read())
                self._read_at = time.monotonic()
            return self._readings

    def _read(self) -> Iterable[tuple[str, int, float]]:
        now = datetime.now(UTC)
        for queue in [*self._hub.control_queues, self._hub.work_items]:
            try:
                depth = queue.approximate_count()
                oldest = queue.oldest_visible() if depth else None
            except Exception as exc:  # a scrape must not fail for one queue (one not created yet)
                _LOG.debug("could not read queue %s: %s", queue.name, exc)
                continue
            yield queue.name, depth, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0

    def close(self) -> None:
        _probes.discard(self)
        self._hub.close()


def _observe_depth(options: CallbackOptions) -> Iterator[Observation]:
    for probe in list(_probes):
        for queue, depth, _ in probe.readings():
            yield Observation(depth, {"queue": queue})


def _observe_age(options: CallbackOptions) -> Iterator[Observation]:
    for probe in list(_probes):
        for queue, _, age in probe.readings():
            yield Observation(age, {"queue": queue})


_METER.create_observable_gauge(
    "durablehub.partitions.owned",
    callbacks=[_observe_partitions],
    unit="{partition}",
    description="Partitions (control queues) each worker of this process owns",
)
_METER.create_observable_gauge(
    "durablehub.queue.depth",
    callbacks=[_observe_depth],
    unit="{message}",
    description="Approximate number of messages in each control queue and the work-item queue",
)
_METER.create_observable_gauge(
    "durablehub.queue.oldest_message_age",
    callbacks=[_observe_age],
    unit="s",
    description="How long the oldest visible message of each queue has waited (0 when none)",
)
