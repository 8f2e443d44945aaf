"""The tracking logger's records, kept for a test (the ``tracked`` fixture of conftest.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, instance_id: str) -> list[dict[str, Any]]:
        return [vars(r) for r in list(self.records) if getattr(r, "instanceId", None) == instance_id]

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60  # a bound for a broken run, not a measurement
        while not check():
            assert time.monotonic() < deadline, f"no {what} in {[vars(r) for r in self.records]}"
            time.sleep(0.05)
