"""The Durable Functions HTTP API: management routes, check-status responses, authentication.

Needs the ``http`` extra (``pip install 'durablehub[http]'``). ``durablehub serve`` runs
``create_app()`` with uvicorn; any Starlette/FastAPI app can answer start requests with
``create_check_status_response`` for the async HTTP API pattern.
"""

from durablehub.http.app import OPENAPI_PATH, create_app
from durablehub.http.check_status import (
    create_check_status_response,
    wait_for_completion_or_create_check_status_response,
)
from durablehub.http.payloads import API_PREFIX
from durablehub.http.settings import HttpSettings

__all__ = [
    "API_PREFIX",
    "OPENAPI_PATH",
    "HttpSettings",
    "create_app",
    "create_check_status_response",
    "wait_for_completion_or_create_check_status_response",
]
