"""Counts storage requests by operation, through the SDKs' public ``raw_request_hook``.

The hook runs after the retry policy, so every attempt that goes on the wire is counted:
the benchmark divides these counts by activities, starts and events. One counter can
serve sync and async clients, several threads and several event loops.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from durablehub.telemetry.metrics import STORAGE_REQUESTS


class RequestCounter:
    """Thread-safe tally of storage requests keyed ``service.operation``."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1
        STORAGE_REQUESTS.add(1, {"operation": operation})

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> dict[str, int]:
        """Return the counts so far and start again from zero."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def hook(self, service: str) -> Callable[[Any], None]:
        """A ``raw_request_hook`` for clients of ``service`` (``blob``, ``queue`` or ``table``)."""

        def on_request(pipeline_request: Any) -> None:
            request = pipeline_request.http_request
            self.record(classify(service, request.method, request.url))

        return on_request


def classify(service: str, method: str, url: str) -> str:
    """A stable, readable name for one REST call, e.g. ``queue.receive`` or ``table.batch``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    comp = (query.get("comp") or [""])[0]
    path = [p for p in parts.path.split("/") if p]
    method = method.upper()
    if service == "queue":
        if comp == "list":
            return "queue.list_queues"
        if comp == "metadata":
            return "queue.get_properties" if method in ("GET", "HEAD") else "queue.set_metadata"
        if path and path[-1] == "messages":
            if method == "POST":
                return "queue.send"
            if method == "GET":
                return "queue.peek" if (query.get("peekonly") or [""])[0] == "true" else "queue.receive"
            return "queue.clear"
        if len(path) >= 2 and path[-2] == "messages":
            return {"DELETE": "queue.delete_message", "PUT": "queue.update_message"}.get(
                method, "queue.message"
            )
        return {"PUT": "queue.create", "DELETE": "queue.delete"}.get(method, f"queue.{method.lower()}")
    if service == "table":
        last = path[-1] if path else ""
        if last == "$batch":
            return "table.batch"
        if last.startswith("Tables"):
            return {"POST": "table.create_table", "DELETE": "table.delete_table"}.get(
                method, "table.list_tables"
            )
        if method == "GET":
            return "table.query"
        return {
            "POST": "table.insert",
            "PUT": "table.upsert_replace",
            "MERGE": "table.upsert_merge",
            "PATCH": "table.upsert_merge",
            "DELETE": "table.delete",
        }.get(method, f"table.{method.lower()}")
    if service == "blob":
        restype = (query.get("restype") or [""])[0]
        if comp == "lease":
            return "blob.lease"
        if comp == "list":
            return "blob.list"
        if restype == "container":
            return {"PUT": "blob.create_container", "DELETE": "blob.delete_container"}.get(
                method, "blob.container_properties"
            )
        return {
            "PUT": "blob.upload",
            "GET": "blob.download",
            "HEAD": "blob.properties",
            "DELETE": "blob.delete",
        }.get(method, f"blob.{method.lower()}")
    return f"{service}.{method.lower()}"
