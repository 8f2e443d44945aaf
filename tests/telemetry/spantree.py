"""Checks on exported spans, whether read from the SDK (in memory) or decoded from OTLP."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class S:
    """A span as the tests look at it."""

    name: str
    kind: str  # "SERVER", "CLIENT", "PRODUCER", "CONSUMER", "INTERNAL"
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any] = field(hash=False)
    status: str  # "UNSET", "OK", "ERROR"
    start_ns: int = 0
    end_ns: int = 0


def from_sdk(spans: Any) -> list[S]:
    return [
        S(
            name=s.name,
            kind=s.kind.name,
            trace_id=f"{s.context.trace_id:032x}",
            span_id=f"{s.context.span_id:016x}",
            parent_id=f"{s.parent.span_id:016x}" if s.parent is not None else None,
            attributes=dict(s.attributes or {}),
            status=s.status.status_code.name,
            start_ns=s.start_time or 0,
            end_ns=s.end_time or 0,
        )
        for s in spans
    ]


def ours(spans: list[S], trace_id: str) -> list[S]:
    return [s for s in spans if s.trace_id == trace_id]


def by_name(spans: list[S], name: str) -> list[S]:
    return [s for s in spans if s.name == name]


def one(spans: list[S], name: str, kind: str | None = None) -> S:
    found = [s for s in by_name(spans, name) if kind is None or s.kind == kind]
    assert len(found) == 1, f"{len(found)} spans {name!r} ({kind}): {describe(spans)}"
    return found[0]


def parent(spans: list[S], child: S) -> S:
    found = [s for s in spans if s.span_id == child.parent_id]
    assert len(found) == 1, (
        f"parent of {child.name!r} ({child.parent_id}): {len(found)} found\n{describe(spans)}"
    )
    return found[0]


def ancestors(spans: list[S], child: S) -> list[S]:
    by_id = {s.span_id: s for s in spans}
    found: list[S] = []
    while child.parent_id in by_id and len(found) < len(spans):
        child = by_id[child.parent_id]  # type: ignore[index]
        found.append(child)
    return found


def no_duplicates(spans: list[S]) -> None:
    counts = Counter(s.span_id for s in spans)
    twice = [s for s in spans if counts[s.span_id] > 1]
    assert not twice, f"spans exported twice: {describe(twice)}"


def is_one_tree(spans: list[S]) -> S:
    """Every span's parent is among them, but for one root; returns the root."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_id is None or s.parent_id not in ids]
    assert len(roots) == 1, f"{len(roots)} roots: {describe(roots)}\nall: {describe(spans)}"
    return roots[0]


def describe(spans: list[S]) -> str:
    return "\n".join(f"  {s.name} [{s.kind}] {s.span_id} <- {s.parent_id}" for s in spans)
