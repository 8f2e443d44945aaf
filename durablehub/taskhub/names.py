"""Resource names of a task hub, hub-name validation, and instance → partition routing.

Everything here is pure and mirrors DurableTask.AzureStorage (taskhub-layout.md §1, §5.1):
queues and containers use the lower-cased hub name, tables keep its case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from durablehub.errors import ConfigurationError
from durablehub.instance_ids import is_control

HUB_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
MIN_PARTITIONS = 1
MAX_PARTITIONS = 16
DEFAULT_PARTITIONS = 4

_FNV_OFFSET_BASIS = 2166136261
_FNV_PRIME = 16777619


def validate_hub_name(name: str) -> str:
    """Return ``name`` if it is a valid task hub name, else raise ConfigurationError.

    Durable Functions' rule: letters and digits, starting with a letter, 3 to 45 characters.
    That keeps ``{hub}-largemessages`` within the 63-character container limit.
    """
    if not isinstance(name, str) or not HUB_NAME_PATTERN.match(name):
        raise ConfigurationError(
            f"invalid task hub name {name!r}: a task hub name has 3 to 45 characters, "
            "letters and digits only, and starts with a letter (for example 'OrdersHub')"
        )
    return name


def validate_partition_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_PARTITIONS <= count <= MAX_PARTITIONS:
        raise ConfigurationError(
            f"invalid partition count {count!r}: a task hub has {MIN_PARTITIONS} to {MAX_PARTITIONS} "
            f"control-queue partitions (default {DEFAULT_PARTITIONS})"
        )
    return count


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a, the hash DurableTask.AzureStorage routes instances with."""
    h = _FNV_OFFSET_BASIS
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_index(instance_id: str, partition_count: int) -> int:
    """Index of the control queue that owns ``instance_id`` (raw id, UTF-8, case-sensitive)."""
    return fnv1a_32(instance_id.encode("utf-8")) % partition_count


@dataclass(frozen=True, slots=True)
class TaskHubNames:
    """Every storage name of one task hub."""

    hub: str
    partition_count: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        validate_hub_name(self.hub)
        validate_partition_count(self.partition_count)

    @property
    def lower(self) -> str:
        return self.hub.lower()

    def control_queue(self, index: int) -> str:
        if not 0 <= index < self.partition_count:
            raise ValueError(f"partition index {index} out of range 0..{self.partition_count - 1}")
        return f"{self.lower}-control-{index:02d}"

    @property
    def control_queues(self) -> list[str]:
        return [self.control_queue(i) for i in range(self.partition_count)]

    def control_queue_for(self, instance_id: str) -> str:
        return self.control_queue(partition_index(instance_id, self.partition_count))

    @property
    def work_item_queue(self) -> str:
        return f"{self.lower}-workitems"

    @property
    def poison_queue(self) -> str:
        return f"{self.lower}-poison"

    @property
    def history_table(self) -> str:
        return f"{self.hub}History"

    @property
    def instances_table(self) -> str:
        return f"{self.hub}Instances"

    @property
    def large_messages_container(self) -> str:
        return f"{self.lower}-largemessages"

    @property
    def leases_container(self) -> str:
        return f"{self.lower}-leases"

    TASK_HUB_INFO_BLOB = "taskhub.json"
    LEASE_TYPE = "default"  # the legacy (v1) blob partition manager's lease set

    def lease_blob(self, partition_id: str) -> str:
        """Lease blob of a partition; the partition id is the control-queue name."""
        return f"{self.LEASE_TYPE}/{partition_id}"


# PartitionKey escaping (KeySanitation.EscapePartitionKey): '/', '\\', '#', '?' and control
# characters are not allowed in table keys; '^' is the escape character.
_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_UNESCAPES = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}


def escape_partition_key(instance_id: str) -> str:
    out: list[str] = []
    for ch in instance_id:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif is_control(ch):
            out.append("^" + chr(ord(ch) + 0xC0))
        else:
            out.append(ch)
    return "".join(out)


def unescape_partition_key(key: str) -> str:
    out: list[str] = []
    chars = iter(key)
    for ch in chars:
        if ch != "^":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is None:
            raise ValueError(f"malformed escaped partition key {key!r}: trailing '^'")
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
        else:
            out.append(chr(ord(nxt) - 0xC0))
    return "".join(out)


_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def blob_segments(path: str) -> str:
    """``path`` (an instance id, as it starts a blob name) with every ``.`` or ``..`` segment
    written ``%2E`` / ``%2E%2E``, other text unchanged.

    A URL resolves dot segments, so a blob named ``../x`` is another blob, outside the
    container with a SAS or a token (with a key, the signature fails: a 403). durablehub's
    clients refuse ids ``.`` and ``..`` and ids with ``/``; the escape covers ids written by
    other clients. (Such an id could share blob names with one whose segment is a literal
    ``%2E``: both would be foreign and odd.)
    """
    if "." not in path:
        return path
    return "/".join(_DOT_SEGMENTS.get(segment, segment) for segment in path.split("/"))


def history_row_key(sequence_number: int) -> str:
    """RowKey of a history event: its 0-based sequence number as 16 upper-case hex digits."""
    return f"{sequence_number:016X}"
