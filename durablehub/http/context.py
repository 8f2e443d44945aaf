"""What the routes share: the hub's settings, the HTTP settings and one client, opened lazily.

The client is opened on the first request (inside the server's event loop, where its storage
sessions must live) and closed by the app's shutdown. A client passed in is used as it is and
left to its owner.
"""

from __future__ import annotations

import asyncio

from durablehub.app import App
from durablehub.async_client import AsyncDurableClient
from durablehub.http.attempts import FailedKeyAttempts
from durablehub.http.settings import HttpSettings
from durablehub.instance_ids import check_no_control
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.aio.hub import AsyncTaskHub


class ManagementContext:
    def __init__(
        self,
        settings: TaskHubSettings,
        http: HttpSettings,
        *,
        client: AsyncDurableClient | None = None,
        app: App | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.app = app
        # Wrong keys per client, shared by the API's key check and the dashboard's login form.
        self.key_attempts = FailedKeyAttempts(http.key_failures_per_minute)
        self._client = client
        self._owns_client = client is None
        self._hub: AsyncTaskHub | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> AsyncDurableClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = AsyncDurableClient(self.settings)
        return self._client

    async def hub(self) -> AsyncTaskHub:
        """The hub's storage adapters, for what no client method covers (the dashboard's hub
        health: queue ages, leases, the poison queue), as the CLI's ``hub`` and ``poison``
        commands use them."""
        if self._hub is None:
            async with self._lock:
                if self._hub is None:
                    self._hub = AsyncTaskHub(self.settings)
        return self._hub

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.close()
        hub, self._hub = self._hub, None
        if hub is not None:
            await hub.close()

    def check_orchestrator(self, name: str) -> None:
        """When this server runs the App's worker, refuse a name the App does not have."""
        check_no_control(name, "orchestrator name")  # named as such, before "no orchestrator named"
        if self.app is not None and name not in self.app.orchestrator_names:
            known = ", ".join(self.app.orchestrator_names) or "none"
            raise ValueError(f"no orchestrator named {name!r} is registered (known: {known})")
