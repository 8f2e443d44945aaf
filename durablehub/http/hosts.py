"""Which Host headers the server trusts, and which addresses are loopback.

The Host header is the caller's to choose. Management URLs built from it would send the next
client (and its credentials) wherever the first caller said, and a server on loopback reached
through a rebound DNS name would answer a web page's requests. So a Host is used only when it
is one of ``HttpSettings.trusted_hosts``: the configured ``allowed_hosts`` or, by default, the
loopback names and the host of ``base_url``. A list rather than ``base_url`` alone, because one
server is often reached under several names (a public one, an internal one, localhost).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ALLOWED_HOSTS_SETTING = "DURABLEHUB_HTTP_ALLOWED_HOSTS"
BASE_URL_SETTING = "DURABLEHUB_HTTP_BASE_URL"


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name of a Host header, without its port: ``[::1]:7071`` → ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(name: str, patterns: list[str]) -> bool:
    """``*`` allows any host, ``*.example.com`` its subdomains, anything else itself."""
    for pattern in (p.strip().lower().strip("[]") for p in patterns):
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def untrusted_host(headers: Iterable[tuple[bytes, bytes]], patterns: list[str]) -> str | None:
    """The request's Host when it is not trusted, else None. A request without a Host header
    (HTTP/1.0) is addressed by the socket it came in on, which the caller does not choose."""
    header = dict(headers).get(b"host")
    if header is None:
        return None
    name = host_name(header.decode("latin-1"))
    return None if host_allowed(name, patterns) else name
