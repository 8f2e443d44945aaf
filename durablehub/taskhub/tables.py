# Generated from durablehub/taskhub/aio/tables.py by scripts/unasync.py: edit that file instead.
"""What the History and Instances tables share: whether the table itself exists.

A hub that is not yet whole (README, "The task hub") may lack either table; ``hub info`` asks.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from durablehub.taskhub.on_demand import Resource


def table_exists(table: TableClient, resource: Resource) -> bool:
    """One request for at most one row's key; False only when ``resource`` (the table) is missing."""
    pages: Any = table.list_entities(select=["PartitionKey"], results_per_page=1).by_page()
    try:
        for _page in pages:
            break
    except ResourceNotFoundError as exc:
        if not resource.is_missing(exc):
            raise
        return False
    return True
