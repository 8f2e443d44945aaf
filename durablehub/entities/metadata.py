"""What clients read about entities: ``EntityMetadata``, ``EntityQuery`` and their results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durablehub.engine.codec import JSON_CODEC, is_structured_type
from durablehub.entities.entity_id import EntityInstanceId

__all__ = ["CleanEntityStorageResult", "EntityMetadata", "EntityQuery", "EntityQueryPage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityMetadata:
    """One entity as stored: its state (if asked for), last change, waiting requests, lock holder."""

    id: EntityInstanceId
    last_modified: datetime
    backlog_queue_size: int = 0
    locked_by: str | None = None
    includes_state: bool = True
    serialized_state: str | None = None
    """The state as JSON text (``None`` if not fetched)."""

    def get_state(self, intended_type: Any = None) -> Any:
        """The state, decoded (into ``intended_type`` if it is a dataclass or pydantic model).

        Raises:
            ValueError: the state was not fetched (``include_state=False``).
        """
        if not self.includes_state:
            raise ValueError(f"the state of {self.id} was not fetched; ask with include_state=True")
        type_ = intended_type if is_structured_type(intended_type) else None
        return JSON_CODEC.decode(self.serialized_state, type_, what=f"state of entity {self.id}")

    def get_locked_by(self) -> str | None:
        """The orchestration holding this entity's lock, or None."""
        return self.locked_by


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityQuery:
    """Which entities ``get_all_entities`` / ``query_entities`` return.

    ``instance_id_starts_with`` is an entity-name prefix (``"cart"``) or an instance-id prefix
    (``"@cart@user-"``); names ignore case. ``include_transient`` also returns entities that
    have no state (only waiting requests or a lock).
    """

    instance_id_starts_with: str | None = None
    last_modified_from: datetime | None = None
    last_modified_to: datetime | None = None
    include_state: bool = True
    include_transient: bool = False
    page_size: int = 100
    continuation_token: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.page_size, int) or not 1 <= self.page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {self.page_size!r}")


@dataclass(frozen=True, slots=True)
class EntityQueryPage:
    """One page of entities; ``continuation_token`` is None on the last page."""

    items: list[EntityMetadata]
    continuation_token: str | None


@dataclass(frozen=True, slots=True)
class CleanEntityStorageResult:
    empty_entities_removed: int
    orphaned_locks_released: int
