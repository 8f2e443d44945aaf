"""The main job on a local Azurite: start it, create the task hub, show what a user would see.

Run by ``scripts/quickstart.sh``. Azurite's data lives in ``.azurite/`` so the hub survives
between runs; the emulator is stopped when the job ends.
"""

from __future__ import annotations

from pathlib import Path

from durablehub.azurite import AzuriteProcess
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with AzuriteProcess(location=ROOT / ".azurite") as azurite:
        print(f"Azurite is running on 127.0.0.1 (queue port {azurite.ports['queue']}, data in .azurite/)")
        settings = TaskHubSettings(task_hub="DurableHubDemo", connection_string=azurite.connection_string)
        print(settings.describe())
        with TaskHub(settings) as hub:
            info = hub.create()
            description = hub.describe()
        print(
            f"\ntask hub {info.task_hub_name!r} is ready ({info.partition_count} partitions, "
            f"created {info.created_at:%Y-%m-%d %H:%M:%S} UTC):"
        )
        names = description.names
        print(f"  tables      {names.history_table}, {names.instances_table}")
        print(
            f"  containers  {names.leases_container} (taskhub.json + {names.partition_count} lease blobs), "
            f"{names.large_messages_container}"
        )
        for queue, length in description.queue_lengths.items():
            print(f"  queue       {queue:<32} {length} messages")
        print(
            f"\nrequests made: {sum(hub.counter.snapshot().values())} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(hub.counter.snapshot().items()))})"
        )
    print("Azurite stopped.")


if __name__ == "__main__":
    main()
