"""Workers running in this process, for a client in the same process to wake.

A start or an event the client sends to an instance wakes the poller of the partition that
owns it, if a worker of this process owns it: the message is picked up at once instead of at
the poller's next receive, which may have backed off to the polling ceiling. It costs no
storage request; across processes the ceiling (and ``IdlePoller.hurry``) bound the wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from durablehub.settings import TaskHubSettings

Waker = Callable[[str], None]  # called with an instance id, from any thread; must not block
HubKey = tuple[str, str]

_lock = threading.Lock()
_wakers: dict[HubKey, list[Waker]] = {}


def hub_key(settings: TaskHubSettings) -> HubKey:
    """The same task hub: the same queue endpoint and hub name (queue names are lower case)."""
    return settings.storage_account().queue_url.rstrip("/").lower(), settings.task_hub.lower()


class Registration:
    """A worker's waker, listed until ``close``."""

    def __init__(self, key: HubKey, waker: Waker) -> None:
        self._key, self._waker = key, waker
        with _lock:
            _wakers.setdefault(key, []).append(waker)

    def close(self) -> None:
        with _lock:
            wakers = _wakers.get(self._key, [])
            if self._waker in wakers:
                wakers.remove(self._waker)
            if not wakers:
                _wakers.pop(self._key, None)


def sent_to(key: HubKey, instance_id: str) -> None:
    """A message for ``instance_id`` was just sent to its control queue on hub ``key``."""
    with _lock:
        wakers = list(_wakers.get(key, ()))
    for waker in wakers:
        waker(instance_id)
