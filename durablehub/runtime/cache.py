"""InstanceCache: instances kept in memory between episodes (orchestrations and entities).

As the reference's extended sessions do, a worker keeps what it knows of an instance (its
replayed executor, an entity's state) so that the next episode needs no history read and an
N-event orchestration costs O(N), not O(N²). Least recently used entries go first. Entries are
only ever valid while this worker owns the instance's partition: the worker forgets a
partition's entries when it stops processing it and again when it acquires it, because another
worker may have committed in between (the sentinel ETag would reject the stale commit, but an
entity's answers are sent before its commit).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InstanceCache(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, instance_id: str) -> T | None:
        item = self._items.get(instance_id)
        if item is not None:
            self._items.move_to_end(instance_id)
        return item

    def put(self, instance_id: str, item: T) -> None:
        if self._capacity <= 0:
            return
        self._items[instance_id] = item
        self._items.move_to_end(instance_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def drop(self, instance_id: str) -> None:
        self._items.pop(instance_id, None)

    def drop_where(self, predicate: Callable[[str], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            del self._items[key]

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._items

    def __len__(self) -> int:
        return len(self._items)
