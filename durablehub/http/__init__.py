"""The Durable Functions HTTP API: management routes, check-status responses, authentication.

Needs the ``http`` extra (``pip install 'durablehub[http]'``). ``durablehub serve`` runs
``create_app()`` with uvicorn; any Starlette/FastAPI app can answer start requests with
``create_check_status_response`` for the async HTTP API pattern, and check who calls its own
routes with ``require_principal`` (an Entra ID token with a given role or scope).

Names resolve lazily (PEP 562), so that ``durablehub.http.payloads``, which the CLI uses to
print statuses, imports without the web framework installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durablehub.http.app import OPENAPI_PATH, create_app
    from durablehub.http.check_status import (
        create_check_status_response,
        wait_for_completion_or_create_check_status_response,
    )
    from durablehub.http.payloads import API_PREFIX
    from durablehub.http.principal import Principal, require_principal
    from durablehub.http.settings import HttpSettings

_WHERE = {
    "API_PREFIX": "durablehub.http.payloads",
    "OPENAPI_PATH": "durablehub.http.app",
    "HttpSettings": "durablehub.http.settings",
    "Principal": "durablehub.http.principal",
    "require_principal": "durablehub.http.principal",
    "create_app": "durablehub.http.app",
    "create_check_status_response": "durablehub.http.check_status",
    "wait_for_completion_or_create_check_status_response": "durablehub.http.check_status",
}
__all__ = [
    "API_PREFIX",
    "OPENAPI_PATH",
    "HttpSettings",
    "Principal",
    "create_app",
    "create_check_status_response",
    "require_principal",
    "wait_for_completion_or_create_check_status_response",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'durablehub.http' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
