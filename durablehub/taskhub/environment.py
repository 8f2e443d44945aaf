"""Whether an HTTP session needs to read the environment on every request.

aiohttp (``trust_env``) and requests (``Session.trust_env``) look up proxy variables -- and
requests its CA-bundle variables -- for every request they send, decoding the whole process
environment each time: measured, about a tenth of a busy worker's CPU. When none of the
variables a session would use is set, the storage clients are built with
``use_env_settings=False`` and skip that. (Named so that ``scripts/unasync.py`` gives the sync
clients, which use requests, the sync answer.)
"""

from __future__ import annotations

import os

_PROXIES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc"})
_REQUESTS_CA = frozenset({"requests_ca_bundle", "curl_ca_bundle"})


def _set(names: frozenset[str]) -> bool:
    return any(name.lower() in names for name in os.environ)


def async_session_reads_environment() -> bool:
    """For aiohttp: proxies and netrc only (its TLS does not read the environment here)."""
    return _set(_PROXIES)


def session_reads_environment() -> bool:
    """For requests: proxies, netrc and its CA-bundle variables."""
    return _set(_PROXIES | _REQUESTS_CA)
