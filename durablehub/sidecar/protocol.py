"""The one place that imports the Durable Task protocol's generated modules.

``TaskHubSidecarService`` (microsoft/durabletask-protobuf) is used through the protobuf and gRPC
modules that the published ``durabletask`` package generates and ships (a pinned range in the
``sidecar`` extra); none are copied into this repository. Everything else in the sidecar imports
``pb`` and ``stubs`` from here, so a move of those modules in a later ``durabletask`` release is
a change to this file only.
"""

from __future__ import annotations

try:
    import grpc
    from durabletask.internal import orchestrator_service_pb2 as pb
    from durabletask.internal import orchestrator_service_pb2_grpc as stubs
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"the Durable Task sidecar needs grpcio and durabletask ({exc}): pip install 'durablehub[sidecar]'"
    ) from exc

__all__ = ["SERVICE_NAME", "grpc", "pb", "stubs"]

SERVICE_NAME = "TaskHubSidecarService"  # the proto has no package: methods are /TaskHubSidecarService/<Rpc>
