"""Durable entities: small stateful objects addressed by ``EntityInstanceId``, run one operation
at a time. The public names; the batch executor is ``durablehub.entities.batch``."""

from durablehub.entities.entity import DurableEntity, EntityContext
from durablehub.entities.entity_id import EntityInstanceId

__all__ = ["DurableEntity", "EntityContext", "EntityInstanceId"]
