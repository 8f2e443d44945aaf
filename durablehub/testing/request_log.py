"""Every storage request of every process, from Azurite's own access log.

A worker counts its requests with ``taskhub.metering``, but users pay for all of them: the
client's, the other workers', the idle polls of processes that report nothing. Azurite logs
each request it answers (``"GET /devstoreaccount1/hub-control-00/messages?... HTTP/1.1" 200``);
``AzuriteRequestLog`` reads that log between two marks and names each request as the metering
policy does (``queue.receive``, ``table.batch``, ``blob.lease``...), so the benchmark can count
what a whole system costs, process boundaries aside.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from durablehub.taskhub.metering import classify
from durablehub.taskhub.names import TaskHubNames

__all__ = ["AzuriteRequestLog", "service_of"]

_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def service_of(target: str, names: TaskHubNames | None = None) -> str:
    """Which service a request path went to (Azurite's log does not say; its path does)."""
    path, _, query = target.partition("?")
    segments = [s for s in path.split("/") if s]
    resource = segments[1].split("(")[0] if len(segments) > 1 else ""
    if resource in ("Tables", "$batch") or (len(segments) > 1 and "(" in segments[1]):
        return "table"
    if names is not None:
        if resource in (names.history_table, names.instances_table):
            return "table"
        if resource in (*names.control_queues, names.work_item_queue, names.poison_queue):
            return "queue"
        if resource in (names.leases_container, names.large_messages_container):
            return "blob"
    if (
        "restype=container" in query
        or "comp=lease" in query
        or len(segments) > 2
        and segments[2] != "messages"
    ):
        return "blob"
    return "queue"


class AzuriteRequestLog:
    """Azurite's access log (``AzuriteProcess.log_path``), read between marks."""

    def __init__(self, path: Path, names: TaskHubNames | None = None) -> None:
        self.path = path
        self.names = names

    def mark(self) -> int:
        """A position in the log: what ``since`` counts from."""
        return self.path.stat().st_size

    def since(self, mark: int) -> Counter[str]:
        """Requests answered after ``mark``, by operation (``classify``'s names)."""
        with self.path.open("rb") as log:
            log.seek(mark)
            text = log.read().decode("utf-8", errors="replace")
        counts: Counter[str] = Counter()
        for match in _REQUEST.finditer(text):
            target = match["target"]
            counts[classify(service_of(target, self.names), match["method"], target)] += 1
        return counts
