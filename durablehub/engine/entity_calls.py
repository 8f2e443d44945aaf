"""The orchestration's side of entities: calls, signals and critical sections, as the reference
records them (``OrchestrationEntityContext``).

Every request is an ``EventSent`` to the entity (a ``SendEvent`` action taking the next
sequence id, so replay checks it like any other) whose data is a ``RequestMessage``; the
entity answers with an ``EventRaised`` named after the request id, which the orchestration
waits for like an external event. The request id is derived from the instance, its execution
and the action's id, not from the clock, so an episode that runs again after a crash sends
the very same requests and the entity recognises them.

A critical section (``lock_entities``) sends one lock request to the first entity of the
sorted lock set; each entity forwards it to the next one once it is locked, and the last one
answers. Inside the section only the locked entities may be called (one call at a time each),
and none signalled. Leaving the ``with`` block, or the orchestration ending in any way,
sends ``release`` to every entity of the set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from durablehub.engine.actions import SendEvent
from durablehub.engine.codec import Codec
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.entities.messages import (
    OPERATION_EVENT,
    RELEASE_EVENT,
    ReleaseMessage,
    RequestMessage,
    ResponseMessage,
    derived_id,
    label,
    scheduled_event_name,
)
from durablehub.errors import OrchestrationStateError, TaskFailedError
from durablehub.task import CompletableTask, CompositeTask, Task

__all__ = ["EntityLock", "OrchestrationEntities"]

_MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)


class EntityLock:
    """A critical section's locks; leaving the ``with`` block releases them."""

    def __init__(self, release: Callable[[], None], entities: tuple[EntityInstanceId, ...]) -> None:
        self._release = release
        self.entities = entities

    def __enter__(self) -> EntityLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Release the locks now (idempotent)."""
        self._release()


class _ResponseTask(CompositeTask[Any]):
    """Completes from the entity's ``ResponseMessage``, delivered as the event named by the request id."""

    def __init__(
        self,
        response: Task[Any],
        *,
        describe: str,
        convert: Callable[[ResponseMessage], Any],
        after: Callable[[], None] = lambda: None,
    ) -> None:
        self._describe = describe
        self._convert = convert
        self._after = after
        super().__init__([response])

    def _on_child_completed(self, child: Task[Any]) -> None:
        if self._is_complete:
            return
        self._after()
        data = child.get_result()
        text = data if isinstance(data, str) else json.dumps(data)
        response = ResponseMessage.from_json(text)
        if response.failure_details is not None:
            failure = response.failure_details
            self._settle(None, TaskFailedError(f"{self._describe} failed: {failure}", failure))
            return
        self._settle(self._convert(response), None)


class OrchestrationEntities:
    """Entity requests of one orchestration instance; kept in its ``ReplayContext``."""

    def __init__(
        self,
        *,
        codec: Codec,
        identity: Callable[[], tuple[str, str | None]],
        take_id: Callable[[], int],
        record: Callable[[SendEvent], None],
        wait: Callable[[str], CompletableTask[Any]],
        now: Callable[[], datetime],
    ) -> None:
        self._codec = codec
        self._identity = identity
        self._take_id = take_id
        self._record = record
        self._wait = wait
        self._now = now
        self._section_id: str | None = None
        self._section_locks: tuple[EntityInstanceId, ...] = ()
        self._available: set[EntityInstanceId] | None = None  # None until the locks are granted
        self._last_sent: dict[str, datetime] = {}  # request labels for in-order delivery, rebuilt by replay

    @property
    def in_critical_section(self) -> bool:
        return self._section_id is not None

    def call_entity(
        self, entity: Any, operation: str, input: Any = None, *, return_type: Any = None
    ) -> Task[Any]:
        target = EntityInstanceId.of(entity)
        _check_operation(operation)
        if self._section_id is not None:
            if self._available is None:
                raise OrchestrationStateError("wait for lock_entities to complete before calling an entity")
            if target not in self._available:
                why = (
                    "a call to it is still pending"
                    if target in self._section_locks
                    else "it is not one of the locked entities"
                )
                raise OrchestrationStateError(f"cannot call {target} inside this critical section: {why}")
            self._available.discard(target)
        encoded = self._codec.encode(input, what=f"input of operation {operation!r} on {target}")
        request_id = self._send_request(target, operation, encoded, is_signal=False)
        available = self._available

        def recover() -> None:
            if available is not None and self._available is available:
                available.add(target)

        codec = self._codec
        describe = f"operation {operation!r} on entity {target}"
        return _ResponseTask(
            self._wait(request_id),
            describe=describe,
            convert=lambda r: codec.decode(r.result, return_type, what=f"result of {describe}"),
            after=recover,
        )

    def signal_entity(
        self, entity: Any, operation: str, input: Any = None, *, signal_time: datetime | None = None
    ) -> None:
        target = EntityInstanceId.of(entity)
        _check_operation(operation)
        if target in self._section_locks:
            raise OrchestrationStateError(f"cannot signal {target}: it is locked by this critical section")
        encoded = self._codec.encode(input, what=f"input of operation {operation!r} on {target}")
        self._send_request(target, operation, encoded, is_signal=True, signal_time=signal_time)

    def lock_entities(self, entities: Iterable[Any]) -> Task[EntityLock]:
        if self._section_id is not None:
            raise OrchestrationStateError("cannot enter a critical section inside another one")
        locks = tuple(sorted({EntityInstanceId.of(e) for e in entities}))
        if not locks:
            raise ValueError("lock_entities needs at least one entity")
        instance_id, execution_id = self._identity()
        task_id = self._take_id()
        request_id = derived_id(instance_id, execution_id, task_id)
        timestamp, predecessor = label(self._last_sent, str(locks[0]), self._now())
        request = RequestMessage(
            id=request_id,
            parent_instance_id=instance_id,
            parent_execution_id=execution_id,
            timestamp=timestamp,
            predecessor=predecessor,
            lockset=locks,
            position=0,
        )
        self._record(
            SendEvent(id=task_id, instance_id=str(locks[0]), name=OPERATION_EVENT, data=request.to_json())
        )
        self._section_id = request_id
        self._section_locks = locks
        self._available = None

        def granted(_: ResponseMessage) -> EntityLock:
            if self._section_id == request_id:
                self._available = set(locks)
            return EntityLock(lambda: self._release_section(request_id), locks)

        return _ResponseTask(
            self._wait(request_id), describe=f"locking {', '.join(map(str, locks))}", convert=granted
        )

    def release_all(self) -> None:
        """The orchestration ends: release the critical section it is in, if any."""
        if self._section_id is not None:
            self._release_section(self._section_id)

    def _release_section(self, section_id: str) -> None:
        if self._section_id != section_id:
            return  # released already
        instance_id, _ = self._identity()
        data = ReleaseMessage(parent_instance_id=instance_id, id=section_id).to_json()
        for entity in self._section_locks:
            self._record(
                SendEvent(id=self._take_id(), instance_id=str(entity), name=RELEASE_EVENT, data=data)
            )
        self._section_id = None
        self._section_locks = ()
        self._available = None

    def _send_request(
        self,
        target: EntityInstanceId,
        operation: str,
        input: str | None,
        *,
        is_signal: bool,
        signal_time: datetime | None = None,
    ) -> str:
        instance_id, execution_id = self._identity()
        task_id = self._take_id()
        request_id = derived_id(instance_id, execution_id, task_id)
        due = _aware(signal_time) if signal_time is not None else None
        timestamp = predecessor = _MIN_TIME  # a due signal is not in the sender's chain
        if due is None:
            timestamp, predecessor = label(self._last_sent, str(target), self._now())
        request = RequestMessage(
            id=request_id,
            operation=operation,
            input=input,
            is_signal=is_signal,
            parent_instance_id=instance_id,
            parent_execution_id=execution_id,
            scheduled_time=due,
            timestamp=timestamp,
            predecessor=predecessor,
        )
        name = OPERATION_EVENT if due is None else scheduled_event_name(due)
        self._record(SendEvent(id=task_id, instance_id=str(target), name=name, data=request.to_json()))
        return request_id


def _aware(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_operation(operation: Any) -> None:
    if not isinstance(operation, str) or not operation:
        raise ValueError(f"operation must be a non-empty string, got {operation!r}")
