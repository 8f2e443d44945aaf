"""WorkDispatcher: the runtime's work handed to connected SDK workers, and their answers back.

Each ``GetWorkItems`` call is a stream (``WorkerStream``) with its own queue of work items,
its own work-item filters and concurrency limits. The runtime ``submit``s a work item and awaits
the answer; the dispatcher gives it to a stream that accepts it (round robin among them) under a
fresh completion token. ``Complete*`` RPCs resolve it by that token. A stream that ends (the
worker disconnected, crashed or was killed) gives its unanswered work back to the other streams
at once -- or keeps it pending until a worker connects -- and its tokens become stale: a late
completion on one is refused, so no work is answered twice. A completion repeated for a token
already answered is accepted and ignored. The runtime keeps the work's queue message invisible
meanwhile (``ControlQueueProcessor``, ``ActivityRunner``), so if this process dies the message
reappears for another sidecar or worker of the hub.

A stream that stops reading looks alive to the transport (gRPC buffers megabytes for it), so
work given to a stream has a deadline: an orchestration or entity work item (and an activity,
if ``activity_timeout`` is set) unanswered past it means the stream stopped reading when its
RPC has not even taken the item off its queue (the write stalled), or when the stream has
answered nothing since it was given and has no older work outstanding. A stream with older
work unanswered is busy, not silent (the SDK runs orchestrations and activities on one thread
pool: an item waits there behind long activities), so the item's deadline starts again. A
dropped stream is ended as if it had gone away (its tokens stale, its work to the others) and
its RPC is told: ``WorkerStream.next`` raises ``StreamDropped``, which the RPC answers
UNAVAILABLE (the SDK reconnects at once). A stream whose queue of unwritten items is full is
given nothing more.

A work item larger than ``max_item_bytes`` (the 4 MiB an SDK's channel receives by default,
less room for framing) is never given: it would end the stream of every worker it went to.
``submit`` raises ``WorkItemTooLarge`` instead, and the runtime fails its episode, activity
or operation once, naming the size and the limit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from durablehub.sidecar.protocol import pb

__all__ = [
    "MAX_ITEM_BYTES",
    "StaleCompletionError",
    "StreamDropped",
    "WorkDispatcher",
    "WorkItemTooLarge",
    "WorkerStream",
]

_LOG = logging.getLogger("durablehub.sidecar")

Kind = Literal["orchestration", "activity", "entity"]
_ANSWERED_KEPT = 4096  # answered tokens remembered, so a repeated completion is harmless
_ABANDON_DELAY = 1.0  # s before abandoned work is offered again (a rejecting worker would spin)
# The largest work item given: a gRPC channel receives 4 MiB by default; room for framing.
# (SidecarLimits.max_reply_bytes has the same default.)
MAX_ITEM_BYTES = 4 * 1024 * 1024 - 64 * 1024


class StaleCompletionError(LookupError):
    """A completion or abandon whose token is unknown: never issued, withdrawn or reissued."""


class StreamDropped(Exception):
    """The dispatcher dropped the stream (it stopped reading); the message says why."""


class WorkItemTooLarge(ValueError):
    """A work item too large for a worker's channel to receive: it is never given."""


@dataclass(frozen=True, slots=True)
class _Filter:
    """Names (lower-case for entities) a stream takes, with versions; empty: everything."""

    names: dict[str, frozenset[str]] = field(default_factory=dict)

    def accepts(self, name: str, version: str | None) -> bool:
        if not self.names:
            return True
        versions = self.names.get(name)
        return versions is not None and (not versions or (version or "") in versions)


def _filter(filters: Collection[Any], *, entities: bool = False) -> _Filter:
    names: dict[str, frozenset[str]] = {}
    for f in filters:
        key = f.name.lower() if entities else f.name
        names[key] = frozenset() if entities else frozenset(f.versions)
    return _Filter(names)


class WorkerStream:
    """One connected SDK worker's ``GetWorkItems`` stream."""

    def __init__(self, stream_id: int, request: pb.GetWorkItemsRequest, *, queue_limit: int = 0) -> None:
        self.id = stream_id
        # Items to write, by token; None (after a drop): the RPC must end.
        self.items: asyncio.Queue[pb.WorkItem | None] = asyncio.Queue(maxsize=queue_limit)
        self.unsent: set[str] = set()  # tokens of items the RPC has not taken off the queue yet
        filters = request.workItemFilters if request.HasField("workItemFilters") else None
        self._filters: dict[Kind, _Filter] = {
            "orchestration": _filter(filters.orchestrations if filters else ()),
            "activity": _filter(filters.activities if filters else ()),
            "entity": _filter(filters.entities if filters else (), entities=True),
        }
        # 0: no limit of the worker's own (it queues what it cannot run yet).
        self._limits: dict[Kind, int] = {
            "orchestration": request.maxConcurrentOrchestrationWorkItems,
            "activity": request.maxConcurrentActivityWorkItems,
            "entity": request.maxConcurrentEntityWorkItems,
        }
        self.outstanding: dict[str, _Work] = {}
        self.closed = False
        self.last_heard = time.monotonic()  # connected, or its last completion or abandon
        self.dropped: str | None = None  # why the dispatcher dropped it (it stopped reading)
        self.on_drop: Callable[[], None] | None = None  # ends its RPC (set by the RPC handler)

    async def next(self, timeout: float) -> pb.WorkItem | None:
        """The next item to write (None: none came within ``timeout``).

        Raises:
            StreamDropped: the dispatcher dropped this stream.
        """
        try:
            item = await asyncio.wait_for(self.items.get(), timeout)
        except TimeoutError:
            item = None
        if self.dropped is not None:
            raise StreamDropped(self.dropped)
        if item is not None:
            self.unsent.discard(item.completionToken)
        return item

    def end(self, why: str) -> None:
        """Dropped: the queued items are stale; wake the RPC waiting in ``next``."""
        self.dropped = why
        while not self.items.empty():
            self.items.get_nowait()
        self.unsent.clear()
        self.items.put_nowait(None)

    def takes(self, work: _Work) -> bool:
        if self.closed or self.items.full() or not self._filters[work.kind].accepts(work.name, work.version):
            return False
        limit = self._limits[work.kind]
        return not limit or sum(1 for w in self.outstanding.values() if w.kind == work.kind) < limit


@dataclass(eq=False)
class _Work:
    kind: Kind
    name: str
    version: str | None
    item: pb.WorkItem
    future: asyncio.Future[Any]
    token: str | None = None
    stream: WorkerStream | None = None
    dispatches: int = 0
    given_at: float = 0.0
    deadline: asyncio.TimerHandle | None = None


class WorkDispatcher:
    """``item_timeout``/``activity_timeout``: seconds before work unanswered on a silent stream
    drops that stream (None: never); ``queue_limit``: unwritten items per stream (0: no limit);
    ``max_item_bytes``: the largest work item given; ``on_change``: called with the number of
    streams connected, on each change."""

    def __init__(
        self,
        *,
        item_timeout: float | None = None,
        activity_timeout: float | None = None,
        queue_limit: int = 0,
        max_item_bytes: int = MAX_ITEM_BYTES,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._on_change = on_change
        self._timeouts: dict[Kind, float | None] = {
            "orchestration": item_timeout,
            "entity": item_timeout,
            "activity": activity_timeout,
        }
        self._queue_limit = queue_limit
        self._max_item_bytes = max_item_bytes
        self._pending: deque[_Work] = deque()
        self._streams: dict[int, WorkerStream] = {}
        self._by_token: dict[str, _Work] = {}
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._ids = itertools.count(1)
        self._turn = 0
        self._closed = False

    @property
    def connected(self) -> int:
        return len(self._streams)

    @property
    def waiting(self) -> int:
        """Work items no connected worker has taken (none connected, or none accepts them)."""
        return len(self._pending)

    # ---------------------------------------------------------------- the runtime's side

    async def submit(self, kind: Kind, name: str, version: str | None, item: pb.WorkItem) -> Any:
        """Give ``item`` to a worker and return its answer (the ``Complete*`` request).
        Cancelling withdraws it: its token goes stale. Once closed, it is cancelled at once.

        Raises:
            WorkItemTooLarge: ``item`` is larger than a worker may receive.
        """
        if self._closed:
            raise asyncio.CancelledError("the sidecar is stopping: no worker can run this")
        size = item.ByteSize() + 40  # its completion token
        if size > self._max_item_bytes:
            raise WorkItemTooLarge(
                f"the {kind} work item for {name!r} takes {size} bytes, more than an SDK worker "
                f"may receive ({self._max_item_bytes} bytes): make its history, input or state smaller"
            )
        work = _Work(kind, name, version, item, asyncio.get_running_loop().create_future())
        self._pending.append(work)
        self._pump()
        try:
            return await work.future
        finally:
            self._withdraw(work)

    # -------------------------------------------------------------------- the RPC side

    def connect(self, request: pb.GetWorkItemsRequest) -> WorkerStream:
        stream = WorkerStream(next(self._ids), request, queue_limit=self._queue_limit)
        self._streams[stream.id] = stream
        _LOG.info("SDK worker stream %d connected (%d connected)", stream.id, len(self._streams))
        self._pump()
        if self._on_change is not None:
            self._on_change(len(self._streams))
        return stream

    def disconnect(self, stream: WorkerStream) -> None:
        """The stream ended: its unanswered work goes to other streams, or waits for one."""
        if stream.closed:
            return  # dropped already
        stream.closed = True
        self._streams.pop(stream.id, None)
        orphans = list(stream.outstanding.values())
        for work in orphans:
            self._revoke(work)
        self._pending.extendleft(reversed(orphans))  # first in line: they waited longest
        _LOG.info(
            "SDK worker stream %d disconnected; %d work items given back (%d connected)",
            stream.id,
            len(orphans),
            len(self._streams),
        )
        self._pump()
        if self._on_change is not None:
            self._on_change(len(self._streams))

    def complete(self, token: str, answer: Any) -> None:
        """Resolve the work given out under ``token``.

        Raises:
            StaleCompletionError: the token is unknown or no longer valid (it was withdrawn,
                abandoned or given to another worker since).
        """
        work = self._by_token.get(token)
        if work is None:
            if token in self._answered:
                return  # a repeated completion: answered already
            raise StaleCompletionError(token)
        self._heard(work)
        self._revoke(work)
        self._remember(token)
        if not work.future.done():
            work.future.set_result(answer)

    def close(self) -> None:
        """No worker can answer any more (the server stopped): work still waiting is cancelled
        at once, so the runtime's stop hands its messages back instead of waiting out its drain."""
        self._closed = True
        for work in [*self._pending, *self._by_token.values()]:
            work.future.cancel()
        self._pending.clear()

    def abandon(self, token: str) -> None:
        """The worker gives the work back: offered again after a short delay."""
        work = self._by_token.get(token)
        if work is None:
            if token in self._answered:
                return
            raise StaleCompletionError(token)
        self._heard(work)
        self._revoke(work)

        def again() -> None:
            if not work.future.done():
                self._pending.append(work)
                self._pump()

        asyncio.get_running_loop().call_later(_ABANDON_DELAY, again)

    # ----------------------------------------------------------------------- internals

    def _pump(self) -> None:
        if not self._streams or not self._pending:
            return
        kept: deque[_Work] = deque()
        streams = list(self._streams.values())
        while self._pending:
            work = self._pending.popleft()
            if work.future.done():
                continue
            stream = self._choose(streams, work)
            if stream is None:
                kept.append(work)
                continue
            self._give(stream, work)
        self._pending = kept

    def _choose(self, streams: list[WorkerStream], work: _Work) -> WorkerStream | None:
        for offset in range(len(streams)):
            stream = streams[(self._turn + offset) % len(streams)]
            if stream.takes(work):
                self._turn = (self._turn + offset + 1) % len(streams)
                return stream
        return None

    def _give(self, stream: WorkerStream, work: _Work) -> None:
        token = uuid.uuid4().hex
        work.token, work.stream = token, stream
        work.dispatches += 1
        work.given_at = time.monotonic()
        self._by_token[token] = work
        stream.outstanding[token] = work
        item = pb.WorkItem()
        item.CopyFrom(work.item)
        item.completionToken = token
        stream.unsent.add(token)
        stream.items.put_nowait(item)
        timeout = self._timeouts[work.kind]
        if timeout is not None:
            work.deadline = asyncio.get_running_loop().call_later(timeout, self._overdue, work, token)

    def _overdue(self, work: _Work, token: str) -> None:
        """``work`` is still unanswered under ``token``. Its stream stopped reading if its RPC
        has not taken the item yet, or if it has answered nothing since and has no older work:
        drop it. With older work unanswered it is busy: check again after another timeout."""
        stream = work.stream
        work.deadline = None
        if work.token != token or stream is None:
            return  # answered, withdrawn or given again
        waited = time.monotonic() - work.given_at
        if token in stream.unsent:
            why = f"its RPC has not taken a {work.kind} work item off its queue for {waited:.0f} s"
        elif stream.last_heard >= work.given_at:
            return  # it answers other work: alive, and this work merely long
        elif any(w.given_at < work.given_at for w in stream.outstanding.values()):
            timeout = self._timeouts[work.kind]
            assert timeout is not None  # the deadline that called this was set from it
            work.deadline = asyncio.get_running_loop().call_later(timeout, self._overdue, work, token)
            return  # busy with older work (its pool may be full): not silent
        else:
            why = f"it answered none of its work for {waited:.0f} s (a {work.kind} work item was due)"
        self.drop(stream, f"{why}; its work goes to other streams")

    def drop(self, stream: WorkerStream, why: str) -> None:
        """End ``stream`` as if it had gone away; its RPC ends with ``why``."""
        if stream.closed:
            return
        _LOG.warning("SDK worker stream %d dropped: %s", stream.id, why)
        self.disconnect(stream)
        stream.end(why)
        if stream.on_drop is not None:
            stream.on_drop()

    def _heard(self, work: _Work) -> None:
        if work.stream is not None:
            work.stream.last_heard = time.monotonic()

    def _revoke(self, work: _Work) -> None:
        """Make the work's current token stale and free its stream's slot."""
        if work.deadline is not None:
            work.deadline.cancel()
            work.deadline = None
        if work.token is not None:
            self._by_token.pop(work.token, None)
            if work.stream is not None:
                work.stream.outstanding.pop(work.token, None)
        work.token, work.stream = None, None
        self._pump()

    def _withdraw(self, work: _Work) -> None:
        self._revoke(work)
        try:
            self._pending.remove(work)
        except ValueError:
            pass

    def _remember(self, token: str) -> None:
        self._answered[token] = None
        while len(self._answered) > _ANSWERED_KEPT:
            self._answered.popitem(last=False)
