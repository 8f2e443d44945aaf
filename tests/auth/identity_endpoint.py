"""A stand-in for the App Service managed-identity endpoint, on loopback, and a TLS certificate.

``ManagedIdentityCredential`` finds it through ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER`` and
speaks the real protocol to it; the tokens are JWTs that Azurite's ``--oauth basic`` accepts
(it checks audience, issuer and times, not the signature).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def write_self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost), and its key, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class IdentityEndpoint:
    """Serves ``GET /msi/token?resource=...&api-version=2019-08-01`` like App Service does."""

    def __init__(self, *, audience: str = "https://storage.azure.com") -> None:
        self.secret = uuid.uuid4().hex
        self.audience = audience
        self.requests: list[dict[str, list[str]]] = []
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = parse_qs(urlsplit(self.path).query)
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
                    self._reply(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
                    return
                resource = query.get("resource", [""])[0]
                now = int(time.time())
                token = jwt.encode(
                    {
                        "aud": endpoint.audience,
                        "iss": f"https://sts.windows.net/{TENANT}/",
                        "iat": now - 60,
                        "nbf": now - 60,
                        "exp": now + 3600,
                        "oid": str(uuid.uuid4()),
                        "tid": TENANT,
                        "sub": "managed-identity",
                    },
                    endpoint._signing_key,
                    algorithm="RS256",
                )
                self._reply(
                    200,
                    {
                        "access_token": token,
                        "expires_on": str(now + 3600),
                        "resource": resource,
                        "token_type": "Bearer",
                        "client_id": query.get("client_id", [""])[0],
                    },
                )

            def _reply(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> IdentityEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
