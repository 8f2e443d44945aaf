"""EntityInstanceId: the name and key of one entity, rendered ``@name@key`` as its instance id.

Entity names are case-insensitive, as in Durable Entities: the id keeps them lower-case (as
durabletask-python does), so ``EntityInstanceId("Counter", "a")`` and ``("counter", "a")`` are
the same entity and the same instance ``@counter@a``. Keys keep their case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EntityInstanceId", "is_entity_instance_id"]


def is_entity_instance_id(instance_id: str) -> bool:
    """True for instance ids of the ``@name@key`` form (entities share the orchestration tables)."""
    return instance_id.startswith("@") and instance_id.find("@", 1) > 1


def _check_part(what: str, text: str) -> None:
    # The instance id is a table PartitionKey, where these are not allowed, and starts blob
    # names, where '/' would add path segments.
    if any(ch in text for ch in "/\\#?") or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        raise ValueError(f"{what} {text!r} must not contain '/', '\\', '#', '?' or control characters")


@dataclass(frozen=True, slots=True, order=True, init=False)
class EntityInstanceId:
    """One entity: ``entity`` (its registered name, case-insensitive) and ``key``."""

    entity: str
    key: str

    def __init__(self, entity: str, key: str) -> None:
        if not isinstance(entity, str) or not entity.strip():
            raise ValueError(f"entity name must be a non-empty string, got {entity!r}")
        if "@" in entity:
            raise ValueError(f"entity name {entity!r} must not contain '@' (ids are rendered '@name@key')")
        _check_part("entity name", entity)
        if not isinstance(key, str):
            raise ValueError(f"entity key must be a string, got {type(key).__qualname__}: {key!r}")
        _check_part("entity key", key)
        object.__setattr__(self, "entity", entity.lower())
        object.__setattr__(self, "key", key)

    @property
    def name(self) -> str:
        """The entity name (lower-case); ``entity`` by its Durable Entities name."""
        return self.entity

    def __str__(self) -> str:
        return f"@{self.entity}@{self.key}"

    @classmethod
    def parse(cls, instance_id: str) -> EntityInstanceId:
        """The entity whose instance id is ``instance_id`` (``@name@key``).

        Raises:
            ValueError: ``instance_id`` is not an entity instance id.
        """
        if not isinstance(instance_id, str) or not is_entity_instance_id(instance_id):
            raise ValueError(f"{instance_id!r} is not an entity instance id; expected '@name@key'")
        at = instance_id.index("@", 1)
        return cls(instance_id[1:at], instance_id[at + 1 :])

    @classmethod
    def of(cls, value: Any) -> EntityInstanceId:
        """Accept an ``EntityInstanceId``, a ``(name, key)`` pair or an ``@name@key`` string.

        Raises:
            ValueError: ``value`` names no entity.
        """
        if isinstance(value, EntityInstanceId):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, tuple) and len(value) == 2:
            return cls(value[0], value[1])
        raise ValueError(f"expected an EntityInstanceId (or '@name@key'), got {value!r}")
