"""The Durable Task sidecar: Microsoft's Durable Task SDKs on a durablehub task hub, over gRPC.

Needs the ``sidecar`` extra (``pip install 'durablehub[sidecar]'``).
"""

from durablehub.sidecar.auth import TlsFiles
from durablehub.sidecar.limits import SidecarLimits
from durablehub.sidecar.server import Sidecar

__all__ = ["Sidecar", "SidecarLimits", "TlsFiles"]
