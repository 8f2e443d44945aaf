"""Requests to an entity delivered in order per sender, whatever order the queue hands them over in.

Queues do not keep order when a message is handed back (a partition moving between workers, a
failed batch) and redelivered after later ones. So every request carries its sender's
``Timestamp`` and ``Predecessor`` (the timestamp of the sender's previous request to the same
entity), as the reference's ``MessageSorter`` labels them, and the entity delivers a request only
after its predecessor, holding it back meanwhile in the scheduler state's ``sorter`` (the
reference's keys: ``ReceivedFromInstance``, ``ReceiveHorizon``). A request whose predecessor has
not come within the reorder window (30 minutes) is delivered anyway; so are requests without a
sender (a forwarded lock request) or without labels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from durablehub.entities.messages import DEDUPLICATION_WINDOW, RequestMessage, format_time, parse_time

__all__ = ["MessageSorter"]

_MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
_RECEIVED = "ReceivedFromInstance"


class MessageSorter:
    """Reads and updates the ``sorter`` dict of a ``SchedulerState`` in place."""

    def __init__(self, data: dict[str, Any], now: datetime) -> None:
        self._data = data
        self._horizon = now - DEDUPLICATION_WINDOW

    def expired(self) -> Iterator[RequestMessage]:
        """Requests held back longer than the window: their predecessors are not coming."""
        for sender, buffer in list(self._buffers().items()):
            held = _held(buffer)
            for stamp in sorted(held):
                request = held[stamp]
                if request.timestamp < self._horizon:
                    del held[stamp]
                    buffer["Last"] = format_time(max(_last(buffer), request.timestamp))
                    yield request
            _store_held(buffer, held)
            yield from self._release(buffer)
            if _last(buffer) < self._horizon and not buffer.get("Buffered"):
                del self._buffers()[sender]

    def receive(self, request: RequestMessage) -> Iterator[RequestMessage]:
        """The requests deliverable now that ``request`` has arrived, in order."""
        sender = request.sender
        if sender is None or request.position > 0 or request.timestamp < self._horizon:
            yield request
            return
        buffers = self._buffers()
        buffer = buffers.setdefault(
            sender, {"Last": format_time(_MIN_TIME), "ExecutionId": request.parent_execution_id}
        )
        if buffer.get("ExecutionId") != request.parent_execution_id:
            # A new generation of the sender: what the old one sent is delivered, the chain restarts.
            held = _held(buffer)
            for stamp in sorted(held):
                yield held[stamp]
            buffer.update({"Last": format_time(_MIN_TIME), "ExecutionId": request.parent_execution_id})
            buffer.pop("Buffered", None)
        last = _last(buffer)
        if request.predecessor > last and request.predecessor >= self._horizon:
            held = _held(buffer)
            held[request.timestamp] = request
            _store_held(buffer, held)
            return
        buffer["Last"] = format_time(max(last, request.timestamp))
        yield request
        yield from self._release(buffer)

    def passed(self, request: RequestMessage) -> Iterator[RequestMessage]:
        """A duplicate of a request received before: if that one was delivered, its label still
        advances the chain (a sender that ran an episode again labels its re-sent requests anew)."""
        sender = request.sender
        buffer = self._buffers().get(sender) if sender is not None else None
        if buffer is None or buffer.get("ExecutionId") != request.parent_execution_id:
            return
        if any(held.id == request.id for held in _held(buffer).values()):
            return  # still held back: its predecessor has not come
        buffer["Last"] = format_time(max(_last(buffer), request.timestamp))
        yield from self._release(buffer)

    def _release(self, buffer: dict[str, Any]) -> Iterator[RequestMessage]:
        held = _held(buffer)
        while held:
            first = min(held)
            request = held[first]
            if request.predecessor > _last(buffer) and request.predecessor >= self._horizon:
                break
            del held[first]
            buffer["Last"] = format_time(max(_last(buffer), request.timestamp))
            yield request
        _store_held(buffer, held)

    def _buffers(self) -> dict[str, dict[str, Any]]:
        return self._data.setdefault(_RECEIVED, {})


def _last(buffer: dict[str, Any]) -> datetime:
    return parse_time(buffer.get("Last") or format_time(_MIN_TIME))


def _held(buffer: dict[str, Any]) -> dict[datetime, RequestMessage]:
    return {
        parse_time(stamp): RequestMessage.from_json(json.dumps(message))
        for stamp, message in (buffer.get("Buffered") or {}).items()
    }


def _store_held(buffer: dict[str, Any], held: dict[datetime, RequestMessage]) -> None:
    if held:
        buffer["Buffered"] = {format_time(t): json.loads(held[t].to_json()) for t in sorted(held)}
    else:
        buffer.pop("Buffered", None)
