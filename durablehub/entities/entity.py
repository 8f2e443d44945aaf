"""The user's side of an entity: ``EntityContext`` for function entities, ``DurableEntity`` for classes.

::

    @app.entity                              # function-based: branch on ctx.operation
    def counter(ctx: EntityContext, input):
        if ctx.operation == "add":
            ctx.set_state(ctx.get_state(int, 0) + input)
        elif ctx.operation == "get":
            return ctx.get_state(int, 0)

    @app.entity(name="ShoppingCart")         # class-based: each public method is an operation
    class ShoppingCart(DurableEntity):
        def add_item(self, item): self.set_state(self.get_state(list, []) + [item])
        def get_contents(self): return self.get_state(list, [])

Operation names match methods ignoring case and underscores, so the Durable Functions docs'
``"AddItem"`` reaches ``add_item``. ``delete`` is built in. The batch executor
(``durablehub.entities.batch``) makes one context per operation and reads back what it did;
nothing here does I/O.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durablehub.engine.codec import JSON_CODEC, Codec, is_structured_type
from durablehub.entities.entity_id import EntityInstanceId
from durablehub.instance_ids import check_new_instance_id, check_no_control

__all__ = ["DurableEntity", "EntityContext", "SignalAction", "StartOrchestrationAction", "find_operation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalAction:
    target: EntityInstanceId
    operation: str
    input: str | None
    signal_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartOrchestrationAction:
    name: str
    instance_id: str
    input: str | None


class EntityContext:
    """One operation's view of its entity: the state, the operation, and messages to send."""

    def __init__(
        self,
        entity_id: EntityInstanceId,
        operation: str,
        *,
        state: str | None,
        exists: bool,
        new_instance_id: Callable[[], str],
        codec: Codec = JSON_CODEC,
    ) -> None:
        self._entity_id = entity_id
        self._operation = operation
        self._state = state
        self._exists = exists
        self._codec = codec
        self._new_instance_id = new_instance_id
        self._actions: list[SignalAction | StartOrchestrationAction] = []

    @property
    def entity_id(self) -> EntityInstanceId:
        return self._entity_id

    @property
    def operation(self) -> str:
        """The name of the operation being run, as the caller wrote it."""
        return self._operation

    @property
    def has_state(self) -> bool:
        return self._exists

    def get_state(self, intended_type: Any = None, default: Any = None) -> Any:
        """The entity's state (decoded into ``intended_type`` if it is a dataclass or pydantic
        model), or ``default`` while the entity has none."""
        if not self._exists:
            return default
        type_ = intended_type if is_structured_type(intended_type) else None
        return self._codec.decode(self._state, type_, what=f"state of entity {self._entity_id}")

    def set_state(self, state: Any) -> None:
        """Replace the state; it must be JSON-serializable (``PayloadError`` otherwise)."""
        self._state = self._codec.encode(state, what=f"state of entity {self._entity_id}")
        self._exists = True

    def delete_state(self) -> None:
        """Delete the entity's state: it no longer exists until an operation sets one again."""
        self._state = None
        self._exists = False

    delete = delete_state

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | None = None,
    ) -> None:
        """Send a one-way operation to an entity, once this operation succeeds."""
        target = EntityInstanceId.of(entity_id)
        _check_operation(operation)
        encoded = self._codec.encode(input, what=f"input of operation {operation!r} on {target}")
        self._actions.append(
            SignalAction(target=target, operation=operation, input=encoded, signal_time=signal_time)
        )

    def schedule_new_orchestration(
        self, orchestrator: str | Callable[..., Any], *, input: Any = None, instance_id: str | None = None
    ) -> str:
        """Start an orchestration once this operation succeeds; returns its instance id."""
        from durablehub.task import get_name  # the task module is the orchestrator's; only names come from it

        # The checks of a client's start: the operation fails (state unchanged), nothing is sent.
        name = check_no_control(get_name(orchestrator), "orchestrator name")
        iid = check_new_instance_id(instance_id) if instance_id is not None else self._new_instance_id()
        encoded = self._codec.encode(input, what=f"input of orchestration {name!r}")
        self._actions.append(StartOrchestrationAction(name=name, instance_id=iid, input=encoded))
        return iid

    # --- read back by the batch executor ---

    @property
    def state_text(self) -> str | None:
        return self._state

    @property
    def actions(self) -> tuple[SignalAction | StartOrchestrationAction, ...]:
        return tuple(self._actions)


class DurableEntity:
    """Base class of class-based entities; each public method is an operation.

    A fresh object serves each operation, so keep data in the state (``get_state`` /
    ``set_state``), not in attributes.
    """

    _context: EntityContext | None = None

    @property
    def entity_context(self) -> EntityContext:
        if self._context is None:
            raise RuntimeError("this entity object is not running an operation")
        return self._context

    @property
    def entity_id(self) -> EntityInstanceId:
        return self.entity_context.entity_id

    def get_state(self, intended_type: Any = None, default: Any = None) -> Any:
        return self.entity_context.get_state(intended_type, default)

    def set_state(self, state: Any) -> None:
        self.entity_context.set_state(state)

    def delete(self) -> None:
        """The built-in ``delete`` operation: the entity's state is removed."""
        self.entity_context.delete_state()

    def signal_entity(
        self,
        entity_id: EntityInstanceId | str,
        operation: str,
        input: Any = None,
        *,
        signal_time: datetime | None = None,
    ) -> None:
        self.entity_context.signal_entity(entity_id, operation, input, signal_time=signal_time)

    def schedule_new_orchestration(
        self, orchestrator: str | Callable[..., Any], *, input: Any = None, instance_id: str | None = None
    ) -> str:
        return self.entity_context.schedule_new_orchestration(
            orchestrator, input=input, instance_id=instance_id
        )


_NOT_OPERATIONS = frozenset(
    {"entity_context", "entity_id", "get_state", "set_state", "signal_entity", "schedule_new_orchestration"}
)


def _squash(name: str) -> str:
    return name.replace("_", "").casefold()


def find_operation(entity_class: type, operation: str) -> str | None:
    """The method of ``entity_class`` that serves ``operation``, or None."""
    candidates = [
        name
        for name in dir(entity_class)
        if not name.startswith("_")
        and name not in _NOT_OPERATIONS
        and callable(getattr(entity_class, name, None))
    ]
    for match in (
        lambda n: n == operation,
        lambda n: n.casefold() == operation.casefold(),
        lambda n: _squash(n) == _squash(operation),
    ):
        found = [n for n in candidates if match(n)]
        if found:
            return sorted(found)[0]
    return None


def operations_of(entity_class: type) -> list[str]:
    return sorted(
        n
        for n in dir(entity_class)
        if not n.startswith("_") and n not in _NOT_OPERATIONS and callable(getattr(entity_class, n, None))
    )


def run_class_operation(entity_class: type, ctx: EntityContext, input_text: str | None, codec: Codec) -> Any:
    """Run ``ctx.operation`` on a fresh ``entity_class`` object; returns the method's result.

    Raises:
        LookupError: the class has no such operation.
    """
    method_name = find_operation(entity_class, ctx.operation)
    if method_name is None:
        raise LookupError(
            f"entity {ctx.entity_id.entity!r} has no operation {ctx.operation!r}; "
            f"its operations: {', '.join(operations_of(entity_class)) or 'none'}"
        )
    instance = entity_class()
    if isinstance(instance, DurableEntity):
        instance._context = ctx
    method = getattr(instance, method_name)
    params = _value_parameters(method)
    if not params:
        return method()
    value = codec.decode(
        input_text, _input_type(method, params[0]), what=f"input of operation {ctx.operation!r}"
    )
    return method(value)


def run_function_operation(
    fn: Callable[..., Any], ctx: EntityContext, input_text: str | None, codec: Codec
) -> Any:
    params = _value_parameters(fn)
    type_ = _input_type(fn, params[1]) if len(params) > 1 else None
    value = codec.decode(input_text, type_, what=f"input of operation {ctx.operation!r}")
    return fn(ctx, value)


def _value_parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _input_type(fn: Callable[..., Any], parameter: inspect.Parameter) -> Any:
    try:
        hint = typing.get_type_hints(fn).get(parameter.name)
    except (TypeError, NameError):
        return None
    return hint if is_structured_type(hint) else None


def _check_operation(operation: Any) -> None:
    if not isinstance(operation, str) or not operation:
        raise ValueError(f"operation must be a non-empty string, got {operation!r}")
