"""The sidecar's trust boundary: who may call it, over what, and from where.

Two means, either or both: TLS (``TlsFiles``: the server's certificate and key, and with a
client CA, mutual TLS), and a shared bearer token checked on every call (``TokenInterceptor``:
the ``authorization: Bearer <token>`` metadata that plain durabletask clients and workers send
with ``metadata=[("authorization", "Bearer ...")]``). ``check_exposure`` refuses an interface
other than loopback unless callers are authenticated -- by the token or by mutual TLS; server-only
TLS encrypts but lets anyone in -- as ``durablehub serve`` refuses one without a key.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from durablehub.errors import ConfigurationError
from durablehub.http.hosts import is_loopback
from durablehub.sidecar.health import HEALTH_CHECK
from durablehub.sidecar.protocol import grpc

__all__ = ["TOKEN_ENV", "TlsFiles", "TokenInterceptor", "check_exposure", "read_token"]

TOKEN_ENV = "DURABLEHUB_SIDECAR_TOKEN"
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_AUTHORIZATION = "authorization"
_SCHEME = "bearer "


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: the server's certificate chain and private key; ``client_ca`` set: only
    clients presenting a certificate signed by it get through (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """Raises:
        ConfigurationError: a file is missing or unreadable."""
        chain = _read(self.cert, "--tls-cert")
        key = _read(self.key, "--tls-key")
        roots = _read(self.client_ca, "--tls-client-ca") if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=roots, require_client_auth=roots is not None
        )


def _read(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigurationError(f"{what} {path} is not a PEM file")
    return data


def read_token(text: str | None, *, source: str) -> str | None:
    """A token from the environment or a file: surrounding whitespace dropped, None if empty.

    Raises:
        ConfigurationError: shorter than 16 characters (a guessable token is no protection).
    """
    token = (text or "").strip()
    if not token:
        return None
    if len(token) < 16:
        raise ConfigurationError(f"the sidecar token ({source}) is shorter than 16 characters")
    return token


def check_exposure(host: str, *, token: str | None, tls: TlsFiles | None) -> None:
    """Refuse to listen beyond loopback without authenticating callers: a token or mutual TLS
    (server-only TLS encrypts, but any client that trusts the certificate gets in).

    Raises:
        ConfigurationError: what to set instead.
    """
    if is_loopback(host) or token or (tls is not None and tls.client_ca is not None):
        return
    how = "over TLS" if tls is not None else "in plain text"
    raise ConfigurationError(
        f"the sidecar would take any call on {host} unauthenticated ({how}): listen on loopback "
        f"(127.0.0.1), or set {TOKEN_ENV} (or --token-file) for a bearer token checked on every "
        "call, or --tls-cert, --tls-key and --tls-client-ca for mutual TLS (TLS without a client "
        "CA encrypts but authenticates nobody: add a token to it)"
    )


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Every call but the health probe (``Check``) must carry ``authorization: Bearer <token>``;
    any other is answered UNAUTHENTICATED before it reaches the service. Compared in constant
    time. ``Watch`` is not exempt: it is a stream held open, which no call cap counts."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    def _allowed(self, details: grpc.HandlerCallDetails) -> bool:
        if details.method == HEALTH_CHECK:  # probes send no metadata
            return True
        for key, value in details.invocation_metadata or ():
            if key != _AUTHORIZATION:
                continue
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            if text[: len(_SCHEME)].lower() == _SCHEME:
                return hmac.compare_digest(text[len(_SCHEME) :].strip().encode(), self._expected)
        return False

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or self._allowed(handler_call_details):
            return handler
        return _refusal(handler)


_REFUSED = (
    "missing or wrong bearer token: send the call metadata 'authorization: Bearer <token>' "
    f"with the sidecar's token ({TOKEN_ENV})"
)


def _refusal(handler: grpc.RpcMethodHandler[_Req, _Resp]) -> grpc.RpcMethodHandler[_Req, _Resp]:
    """A handler of the same shape as ``handler`` that refuses the call."""

    async def unary(request: _Req, context: grpc.aio.ServicerContext[_Req, _Resp]) -> _Resp:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSED)
        raise AssertionError("unreachable: abort raises")

    async def stream(request: _Req, context: grpc.aio.ServicerContext[_Req, _Resp]) -> AsyncIterator[_Resp]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSED)
        yield  # pragma: no cover - abort raises; this makes it an async generator

    decode, encode = handler.request_deserializer, handler.response_serializer
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream, decode, encode)
    # TaskHubSidecarService has no client-streaming method: every other one is unary-unary.
    return grpc.unary_unary_rpc_method_handler(unary, decode, encode)
