"""Which strings may name a new instance: Durable Functions' rules for StartNewAsync.

Pure and shared by the clients (a start) and the engine (a sub-orchestration's id): an id
becomes a path segment of blob names and URLs, so ``/``, ``\\``, ``#``, ``?``, control
characters, ``.`` and ``..`` are refused; ``@`` opens entity ids.
"""

from __future__ import annotations

from typing import Any

MAX_INSTANCE_ID_LENGTH = 256  # Durable Functions' MaxInstanceIdLength


def is_control(ch: str) -> bool:
    """.NET's char.IsControl."""
    code = ord(ch)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def check_no_control(text: str, what: str) -> str:
    """``text``, or ValueError naming ``what`` when it holds control characters: names and ids
    are written into log lines, where a CR or LF would forge a line of its own."""
    bad = sorted({repr(ch) for ch in text if is_control(ch)})
    if bad:
        raise ValueError(
            f"{what} {text!r} contains {', '.join(bad)}; names and ids must not contain control characters"
        )
    return text


def check_instance_id(instance_id: Any) -> str:
    """An id to look up: any non-empty string without control characters (no client of the
    reference writes those; ids written by other clients may use any other character)."""
    if not isinstance(instance_id, str) or not instance_id:
        raise ValueError(f"instance_id must be a non-empty string, got {instance_id!r}")
    return check_no_control(instance_id, "instance id")


def check_new_instance_id(instance_id: Any) -> str:
    """An id for a new instance, or ValueError naming what is wrong with it."""
    check_instance_id(instance_id)
    if instance_id in (".", ".."):  # a path segment of blob names and URLs: it would be resolved
        raise ValueError(f"instance id {instance_id!r} is not allowed: '.' and '..' are path segments")
    if instance_id.startswith("@"):
        raise ValueError(f"instance id {instance_id!r} starts with '@', which is reserved for entities")
    bad = sorted({repr(ch) for ch in instance_id if ch in "/\\#?" or is_control(ch)})
    if bad:
        raise ValueError(
            f"instance id {instance_id!r} contains {', '.join(bad)}; "
            "instance ids must not contain /, \\, #, ? or control characters"
        )
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise ValueError(
            f"instance id is {len(instance_id)} characters long; the limit is {MAX_INSTANCE_ID_LENGTH}"
        )
    return instance_id
