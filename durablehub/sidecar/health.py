"""The standard gRPC health service (``grpc.health.v1.Health``) of the sidecar, for probes.

SERVING once the sidecar is ready (an SDK worker is connected to every hub it serves, so its
partitions are taken), NOT_SERVING before and after, for the whole server ("") and for
``TaskHubSidecarService``. Kubernetes' gRPC probe and ``grpc_health_probe`` call it without
metadata, so the bearer token is not asked of ``Check`` (``auth.TokenInterceptor``; it tells
nothing about the hubs' data); ``Watch``, a stream held open, needs the token.
"""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from durablehub.sidecar.protocol import SERVICE_NAME, grpc

__all__ = ["HEALTH_CHECK", "Health"]

HEALTH_CHECK = "/grpc.health.v1.Health/Check"  # the probe; Watch (a stream) is not exempt


class Health:
    def __init__(self, server: grpc.aio.Server) -> None:
        self._servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)
        self.ready: bool | None = None

    async def set_ready(self, ready: bool) -> None:
        if ready == self.ready:
            return
        self.ready = ready
        status = (
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            await self._servicer.set(service, status)

    async def stop(self) -> None:
        """NOT_SERVING for good: the server is stopping."""
        await self._servicer.enter_graceful_shutdown()
