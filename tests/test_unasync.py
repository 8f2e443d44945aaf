"""The sync task-hub adapters are generated from the async ones and must not drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_sync_adapters_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sync_and_async_adapters_have_the_same_methods() -> None:
    import inspect

    from durablehub.taskhub import history_table, hub, instances_table, leases, queues
    from durablehub.taskhub.aio import history_table as ahistory
    from durablehub.taskhub.aio import hub as ahub
    from durablehub.taskhub.aio import instances_table as ainstances
    from durablehub.taskhub.aio import leases as aleases
    from durablehub.taskhub.aio import queues as aqueues

    pairs = [
        (hub.TaskHub, ahub.AsyncTaskHub),
        (history_table.HistoryTable, ahistory.AsyncHistoryTable),
        (instances_table.InstancesTable, ainstances.AsyncInstancesTable),
        (leases.PartitionLeaseStore, aleases.AsyncPartitionLeaseStore),
        (queues.TaskHubQueue, aqueues.AsyncTaskHubQueue),
    ]
    for sync_cls, async_cls in pairs:

        def public(cls: type) -> dict[str, list[str]]:
            return {
                name: list(inspect.signature(fn).parameters)
                for name, fn in inspect.getmembers(cls, inspect.isfunction)
                if not name.startswith("_")
            }

        assert public(sync_cls) == public(async_cls), sync_cls.__name__


def test_ruff_excludes_exactly_the_generated_files() -> None:
    """The exclude list is written from the generator's pairs: a missing or stale entry fails."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import unasync
    finally:
        sys.path.pop(0)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert unasync.ruff_excludes(pyproject) == pyproject
    dropped = pyproject.replace('    "durablehub/taskhub/table_batch.py",\n', "")
    assert dropped != pyproject
    assert unasync.ruff_excludes(dropped) == pyproject
