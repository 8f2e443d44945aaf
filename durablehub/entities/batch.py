"""Run one batch of entity messages: scheduler state and messages in, new state and messages out.

This is the entity's episode, and pure (no I/O, no clock: ``now`` is passed in). For each
message, in arrival order:

* a request (``"op"``) is recognised as a duplicate by its id, or queued;
  a signal due later (``"op@<time>"``) is sent back to the entity to arrive then;
* a ``"release"`` from the lock holder unlocks the entity.

Then queued requests run one at a time, first in, first out; while an orchestration holds
the lock only its own requests run, the others wait. A lock request locks the entity and is
forwarded to the next entity of its lock set, in the set's (sorted) order, or answered when
this is the last one: that fixed order is why two critical sections cannot deadlock. An
operation that raises leaves the state as it was before it and sends nothing but its failure
to the caller; so does one the runtime gave up on (``given_up``: it never returned within its
deadline, and the batch runs again without it). The runtime learns which operation is running
from ``watch``. Ids of the messages an operation sends are derived from its request id, so a
batch that runs again after a crash sends the same messages, which receivers de-duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from durablehub.engine import history as ev
from durablehub.engine.codec import JSON_CODEC, Codec
from durablehub.engine.episode import OutboundMessage
from durablehub.entities.entity import (
    EntityContext,
    SignalAction,
    StartOrchestrationAction,
    run_class_operation,
    run_function_operation,
)
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import (
    LOCK_GRANTED,
    OPERATION_EVENT,
    RELEASE_EVENT,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    SchedulerState,
    derived_id,
    format_time,
    label,
    parse_event_name,
    parse_time,
    scheduled_event_name,
)
from durablehub.entities.sorter import MessageSorter
from durablehub.models import FailureDetails

__all__ = [
    "EntityBatchResult",
    "OperationOutcome",
    "OperationRecord",
    "OperationWatch",
    "RemoteOperations",
    "run_entity_batch",
]

_LOG = logging.getLogger("durablehub.entities")
MAX_DELAY = timedelta(days=6)  # no queue message stays invisible longer; later signals hop


class OperationWatch(Protocol):
    """Told when user code of an operation starts and ends (the runtime keeps its deadline)."""

    def begin(self, request_id: str, operation: str) -> None: ...

    def end(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationOutcome:
    """What an operation run elsewhere did: its result (JSON text) or failure, the entity's
    state after it (None: no state), and the messages it asked for."""

    result: str | None = None
    failure: FailureDetails | None = None
    state: str | None = None
    actions: tuple[SignalAction | StartOrchestrationAction, ...] = ()


class RemoteOperations(Protocol):
    """An entity whose operations run elsewhere (the sidecar's SDK workers): a ``target`` of
    its own kind. ``run_operation`` blocks until the operation has run."""

    def run_operation(
        self,
        entity_id: EntityInstanceId,
        operation: str,
        request_id: str,
        state: str | None,
        input: str | None,
    ) -> OperationOutcome: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationRecord:
    """One operation the batch ran (or failed without running), for the tracking logs."""

    request_id: str
    operation: str
    input: str | None
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityBatchResult:
    state: SchedulerState
    messages: tuple[OutboundMessage, ...]
    operations_run: int
    duplicates: int
    operations: tuple[OperationRecord, ...] = ()


def run_entity_batch(
    entity_id: EntityInstanceId,
    target: Callable[..., Any] | type | RemoteOperations | None,
    state: SchedulerState,
    events: Sequence[ev.HistoryEvent],
    *,
    now: datetime,
    missing_reason: str = "",
    codec: Codec = JSON_CODEC,
    watch: OperationWatch | None = None,
    given_up: Mapping[str, Exception] | None = None,
) -> EntityBatchResult:
    """Apply ``events`` to ``state`` (not modified) for the entity ``target`` implements.

    ``target`` is the registered class or function, ``RemoteOperations``, or None if the name is
    not registered:
    then calls fail with ``missing_reason`` and signals are dropped. Requests in ``given_up``
    (by id) fail with that error without running.
    """
    batch = _Batch(entity_id, target, state.copy(), now, missing_reason, codec, watch, given_up or {})
    for event in events:
        batch.receive(event)
    batch.run_queue()
    batch.state.forget_old_requests(now)
    return EntityBatchResult(
        state=batch.state,
        messages=tuple(batch.messages),
        operations_run=batch.ran,
        duplicates=batch.duplicates,
        operations=tuple(batch.operations),
    )


class _Batch:
    def __init__(
        self,
        entity_id: EntityInstanceId,
        target: Callable[..., Any] | type | RemoteOperations | None,
        state: SchedulerState,
        now: datetime,
        missing_reason: str,
        codec: Codec,
        watch: OperationWatch | None,
        given_up: Mapping[str, Exception],
    ) -> None:
        self.entity_id = entity_id
        self.watch = watch
        self.given_up = given_up
        self.instance_id = str(entity_id)
        self.target = target
        self.state = state
        self.now = now
        self.missing_reason = missing_reason or f"no entity named {entity_id.entity!r} is registered"
        self.codec = codec
        self.messages: list[OutboundMessage] = []
        self.operations: list[OperationRecord] = []
        self.ran = 0
        self.duplicates = 0
        self.sorter = MessageSorter(state.sorter, now)
        for request in self.sorter.expired():
            self._enqueue(request)

    # --- receiving ---

    def receive(self, event: ev.HistoryEvent) -> None:
        if not isinstance(event, ev.EventRaised):
            _LOG.warning("%s: ignoring %s sent to an entity", self.instance_id, type(event).__name__)
            return
        name, due = parse_event_name(event.name)
        try:
            if name == OPERATION_EVENT:
                self._receive_request(RequestMessage.from_json(event.input), event, due)
            elif name == RELEASE_EVENT:
                self._receive_release(ReleaseMessage.from_json(event.input))
            else:
                _LOG.warning("%s: ignoring event %r sent to an entity", self.instance_id, event.name)
        except ValueError as exc:
            _LOG.warning("%s: dropping unreadable %r message: %s", self.instance_id, event.name, exc)

    def _receive_request(self, request: RequestMessage, event: ev.EventRaised, due: datetime | None) -> None:
        if due is not None and due > self.now:
            # Not due yet (a signal_time beyond the queue's delay limit, or sent without delay):
            # send it back to arrive when due.
            self._send(self.instance_id, None, event, visible_at=min(due, self.now + MAX_DELAY))
            return
        if not self.state.remember(request.id, self.now):
            self.duplicates += 1
            for released in self.sorter.passed(request):
                self._enqueue(released)
            return
        for ready in self.sorter.receive(request):
            self._enqueue(ready)

    def _enqueue(self, request: RequestMessage) -> None:
        if request.is_lock_request and f"release:{request.id}" in self.state.processed:
            return  # its critical section ended before the lock was granted
        self.state.queue.append(request)

    def _receive_release(self, release: ReleaseMessage) -> None:
        if not self.state.remember(f"release:{release.id}", self.now):
            self.duplicates += 1
            return
        if self.state.locked_by == release.parent_instance_id:
            self.state.locked_by = None
        # A lock request of the section still waiting here must not lock the entity later.
        self.state.queue = [
            m
            for m in self.state.queue
            if not (
                m.is_lock_request
                and m.id == release.id
                and m.parent_instance_id == release.parent_instance_id
            )
        ]

    # --- running ---

    def run_queue(self) -> None:
        while (request := self._next_request()) is not None:
            if request.is_lock_request:
                self._grant_lock(request)
            else:
                self._run_operation(request)

    def _next_request(self) -> RequestMessage | None:
        queue = self.state.queue
        holder = self.state.locked_by
        for i, request in enumerate(queue):
            if holder is None or request.parent_instance_id == holder:
                return queue.pop(i)
        return None

    def _grant_lock(self, request: RequestMessage) -> None:
        assert request.lockset is not None
        self.state.locked_by = request.parent_instance_id
        position = request.position
        if position + 1 < len(request.lockset):
            forwarded = RequestMessage(
                id=request.id,
                parent_instance_id=request.parent_instance_id,
                parent_execution_id=request.parent_execution_id,
                timestamp=self.now,
                lockset=request.lockset,
                position=position + 1,
            )
            target = str(request.lockset[position + 1])
            self._send(
                target,
                None,
                ev.EventRaised(timestamp=self.now, name=OPERATION_EVENT, input=forwarded.to_json()),
            )
        else:
            self._respond(request, ResponseMessage(result=LOCK_GRANTED))

    def _run_operation(self, request: RequestMessage) -> None:
        operation = request.operation or ""
        self.ran += 1
        if self.target is None:
            self._fail(request, LookupError(self.missing_reason))
            return
        if request.id in self.given_up:
            self._fail(request, self.given_up[request.id])
            return
        ctx = EntityContext(
            self.entity_id,
            operation,
            state=self.state.state,
            exists=self.state.exists,
            new_instance_id=lambda: derived_id(
                self.instance_id, request.id, "orchestration", len(ctx.actions)
            ),
            codec=self.codec,
        )
        if self.watch is not None:
            self.watch.begin(request.id, operation)
        if hasattr(self.target, "run_operation"):
            try:
                self._run_remote(request, operation, self.target)
            finally:
                if self.watch is not None:
                    self.watch.end()
            return
        try:
            if isinstance(self.target, type):
                result = run_class_operation(self.target, ctx, request.input, self.codec)
            else:
                result = run_function_operation(self.target, ctx, request.input, self.codec)
            encoded = self.codec.encode(
                result, what=f"result of operation {operation!r} on {self.instance_id}"
            )
        except Exception as exc:  # the operation fails; the state stays as it was before it
            self._fail(request, exc)
            return
        finally:
            if self.watch is not None:
                self.watch.end()
        self.state.state = ctx.state_text if ctx.has_state else None
        self.state.exists = ctx.has_state
        self.operations.append(
            OperationRecord(request_id=request.id, operation=operation, input=request.input, result=encoded)
        )
        for index, action in enumerate(ctx.actions):
            self._perform(request, index, action)
        if not request.is_signal:
            self._respond(request, ResponseMessage(result=encoded))

    def _run_remote(self, request: RequestMessage, operation: str, remote: RemoteOperations) -> None:
        state = self.state.state if self.state.exists else None
        # Raising (no answer: the worker went away, the sidecar stops) abandons the batch: it is
        # not recorded, and runs again.
        outcome = remote.run_operation(self.entity_id, operation, request.id, state, request.input)
        if outcome.failure is not None:  # its own side rolled its state back
            self._fail(request, outcome.failure)
            return
        self.state.state = outcome.state
        self.state.exists = outcome.state is not None
        self.operations.append(
            OperationRecord(
                request_id=request.id, operation=operation, input=request.input, result=outcome.result
            )
        )
        for index, action in enumerate(outcome.actions):
            self._perform(request, index, action)
        if not request.is_signal:
            self._respond(request, ResponseMessage(result=outcome.result))

    def _fail(self, request: RequestMessage, exc: Exception | FailureDetails) -> None:
        failure = exc if isinstance(exc, FailureDetails) else FailureDetails.from_exception(exc)
        self.operations.append(
            OperationRecord(
                request_id=request.id, operation=request.operation or "", input=request.input, failure=failure
            )
        )
        if request.is_signal:
            _LOG.warning(
                "%s: signalled operation %r failed: %s", self.instance_id, request.operation, failure
            )
            return
        self._respond(request, ResponseMessage(failure_details=failure))

    def _perform(
        self, request: RequestMessage, index: int, action: SignalAction | StartOrchestrationAction
    ) -> None:
        if isinstance(action, SignalAction):
            timestamp = predecessor = datetime(1, 1, 1, tzinfo=UTC)  # a due signal is not in the chain
            if action.signal_time is None:
                last_sent = self.state.sorter.setdefault("LastSentToInstance", {})
                sent = {k: parse_time(v) for k, v in last_sent.items()}
                timestamp, predecessor = label(sent, str(action.target), self.now)
                last_sent[str(action.target)] = format_time(timestamp)
            message = RequestMessage(
                id=derived_id(self.instance_id, request.id, index),
                operation=action.operation,
                input=action.input,
                is_signal=True,
                parent_instance_id=self.instance_id,
                scheduled_time=action.signal_time,
                timestamp=timestamp,
                predecessor=predecessor,
            )
            due = action.signal_time
            name = OPERATION_EVENT if due is None else scheduled_event_name(due)
            visible_at = min(due, self.now + MAX_DELAY) if due is not None and due > self.now else None
            event = ev.EventRaised(timestamp=self.now, name=name, input=message.to_json())
            self._send(str(action.target), None, event, visible_at=visible_at)
        else:
            execution_id = derived_id(self.instance_id, request.id, index, "execution").replace("-", "")
            start = ev.ExecutionStarted(
                timestamp=self.now,
                orchestration_instance=ev.OrchestrationInstance(
                    instance_id=action.instance_id, execution_id=execution_id
                ),
                name=action.name,
                input=action.input,
            )
            self._send(action.instance_id, execution_id, start)

    def _respond(self, request: RequestMessage, response: ResponseMessage) -> None:
        if request.parent_instance_id is None:
            return  # a client's signal: nobody to answer
        event = ev.EventRaised(timestamp=self.now, name=request.id, input=response.to_json())
        self._send(request.parent_instance_id, request.parent_execution_id, event)

    def _send(
        self,
        instance_id: str,
        execution_id: str | None,
        event: ev.HistoryEvent,
        *,
        visible_at: datetime | None = None,
    ) -> None:
        self.messages.append(
            OutboundMessage(
                target_instance_id=instance_id,
                target_execution_id=execution_id,
                event=event,
                visible_at=visible_at,
            )
        )
