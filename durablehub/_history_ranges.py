"""Listing the History rows of many instances with one query per range of PartitionKeys.

A purge by filter used to query each instance's partition. On the service that is an indexed
point range, but it is one request per instance; on Azurite every query is a scan of the
whole table, so a purge of N instances of an N-instance hub cost O(N²). One query over
``low <= PartitionKey <= high`` returns the rows of every instance in between, sorted by
(PartitionKey, RowKey), a page at a time: instances to be purged are kept, the rows of any
other instance in the range are skipped (never deleted). When the set is sparse, the skipped
rows are waste; ``RangeListing`` gives a range up once its waste outgrows what it found (and
``WASTE_ALLOWANCE_ROWS``), and the instances it did not reach are listed one by one, as
before. So the waste is bounded by about one page per group of instances.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from durablehub.taskhub.history_table import DELETE_SELECT

INSTANCES_PER_RANGE = 200  # about 2,000 rows of short histories: two or three pages
PAGE_SIZE = 1000  # the service's maximum
WASTE_ALLOWANCE_ROWS = 1000  # rows of other instances a range may skip before it is given up

# What a guarded delete needs of a row (AsyncHistoryTable.delete_instance), and what a
# recursive purge reads to find the sub-orchestrations (_management_core.child_instance_ids).
_CHILD_COLUMNS = ("EventType", "InstanceId", "ExecutionId")


def history_select(*, recursive: bool) -> list[str]:
    """The History columns a purge reads."""
    return [*DELETE_SELECT, *(_CHILD_COLUMNS if recursive else ())]


def groups(partition_keys: Iterable[str], size: int | None = None) -> list[list[str]]:
    """The keys sorted and cut into groups of ``size``, each listed by one range query."""
    ordered = sorted(set(partition_keys))
    step = size or INSTANCES_PER_RANGE
    return [ordered[start : start + step] for start in range(0, len(ordered), step)]


class RangeListing:
    """The rows of one group's range, page after page, kept only for the group's keys."""

    def __init__(self, wanted: Sequence[str]) -> None:
        self.low, self.high = min(wanted), max(wanted)
        self._wanted = frozenset(wanted)
        self.rows: dict[str, list[Any]] = {}
        self._kept = self._skipped = 0
        self._last_key: str | None = None
        self._finished = False

    def add_page(self, page: Sequence[Mapping[str, Any]], last: bool) -> bool:
        """Take one page (``last``: the service has no more); True to read the next one."""
        for row in page:
            key = row["PartitionKey"]
            if key in self._wanted:
                self.rows.setdefault(key, []).append(row)
                self._kept += 1
            else:
                self._skipped += 1
            self._last_key = key
        if last:
            self._finished = True
            return False
        return self._skipped <= max(WASTE_ALLOWANCE_ROWS, self._kept)

    def listed(self) -> dict[str, list[Any]]:
        """The keys whose rows were all read, with their rows. A key the range query returned
        nothing for is left out too: the caller lists it alone (an instance whose history a
        purge already deleted, or one the service sorts outside the range)."""
        if self._finished:
            return dict(self.rows)
        # The page may have stopped inside the partition of the last key read.
        return {k: v for k, v in self.rows.items() if self._last_key is not None and k < self._last_key}
