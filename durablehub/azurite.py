"""Start and stop the pinned Azurite emulator on loopback.

Azurite is durablehub's embedded default for development and tests. The flags it always
needs (spec §7): ``--skipApiVersionCheck`` (the SDKs speak a newer API version) and
``--disableTelemetry`` (else shutdown takes ~12 s); a data folder rather than in-memory
mode (whose queue cleanup freezes under load); and ``127.0.0.1``, never ``localhost``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from durablehub.errors import ConfigurationError
from durablehub.taskhub.accounts import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

HOST = "127.0.0.1"
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
REPO_AZURITE = Path(__file__).resolve().parent.parent / "azurite" / "node_modules" / ".bin" / "azurite"


class AzuriteNotInstalledError(ConfigurationError):
    """The Azurite executable could not be found."""


def find_azurite() -> str:
    """The Azurite executable: ``$DURABLEHUB_AZURITE``, the repo's pinned copy, or PATH."""
    explicit = os.environ.get("DURABLEHUB_AZURITE")
    if explicit:
        if not Path(explicit).exists():
            raise AzuriteNotInstalledError(f"DURABLEHUB_AZURITE={explicit!r} does not exist")
        return explicit
    if REPO_AZURITE.exists():
        return str(REPO_AZURITE)
    on_path = shutil.which("azurite")
    if on_path:
        return on_path
    raise AzuriteNotInstalledError(
        "Azurite is not installed: run 'npm ci' in the repository's azurite/ folder "
        "(or set DURABLEHUB_AZURITE to an azurite executable)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


_PORT_ATTEMPTS = 3


class _PortTakenError(RuntimeError):
    """Azurite could not bind a port that was free a moment before."""


class AzuriteProcess:
    """One Azurite process (blob, queue and table) on loopback. A context manager.

    Ports of 0 are chosen free. ``oauth=True`` starts it with ``--oauth basic`` over HTTPS,
    which needs ``cert`` and ``key`` (PEM files).
    """

    def __init__(
        self,
        *,
        location: str | Path | None = None,
        in_memory: bool = False,
        blob_port: int = 0,
        queue_port: int = 0,
        table_port: int = 0,
        oauth: bool = False,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        executable: str | None = None,
    ) -> None:
        if oauth and not (cert and key):
            raise ConfigurationError("Azurite's --oauth basic needs HTTPS: pass cert= and key= (PEM files)")
        self.in_memory = in_memory
        self._own_location = location is None and not in_memory
        self.location = (
            Path(location) if location else (None if in_memory else Path(tempfile.mkdtemp(prefix="azurite-")))
        )
        self._chosen_ports = {"blob": blob_port, "queue": queue_port, "table": table_port}
        self.ports = {service: port or free_port() for service, port in self._chosen_ports.items()}
        self.oauth = oauth
        self.cert = Path(cert) if cert else None
        self.key = Path(key) if key else None
        self.executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.cert else "http"

    def endpoint(self, service: str) -> str:
        return f"{self.scheme}://{HOST}:{self.ports[service]}/{DEV_ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """An account-key connection string with explicit loopback endpoints."""
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint('blob')};QueueEndpoint={self.endpoint('queue')};"
            f"TableEndpoint={self.endpoint('table')};"
        )

    def command(self) -> list[str]:
        args = [
            self.executable or find_azurite(),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost", HOST, "--blobPort", str(self.ports["blob"]),
            "--queueHost", HOST, "--queuePort", str(self.ports["queue"]),
            "--tableHost", HOST, "--tablePort", str(self.ports["table"]),
        ]  # fmt: skip
        if self.in_memory:
            args.append("--inMemoryPersistence")
        else:
            assert self.location is not None
            args += ["--location", str(self.location)]
        if self.cert and self.key:
            args += ["--cert", str(self.cert), "--key", str(self.key)]
        if self.oauth:
            args += ["--oauth", "basic"]
        return args

    def start(self, timeout: float = 30.0) -> AzuriteProcess:
        """Start Azurite and wait for its ports. A free port can be taken by another process
        between ``free_port()`` and Azurite's bind: then ports chosen here are chosen again."""
        for attempt in range(_PORT_ATTEMPTS):
            try:
                return self._start_once(timeout)
            except _PortTakenError:
                if attempt == _PORT_ATTEMPTS - 1 or any(self._chosen_ports.values()):
                    raise
                self.ports = {s: port or free_port() for s, port in self._chosen_ports.items()}
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> AzuriteProcess:
        if self._process is not None:
            return self
        command = self.command()
        log_dir = self.location or Path(tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = log_dir / f"azurite-{os.getpid()}-{self.ports['queue']}.log"
        log = open(self._log_path, "wb")  # noqa: SIM115 - Azurite writes here for its whole life
        # A session of its own: a terminal's Ctrl-C goes to the program, whose shutdown (a
        # worker releasing its leases) needs storage, and which stops Azurite last.
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code, self._process = self._process.returncode, None
                tail = self.log_tail()
                error = _PortTakenError if "EADDRINUSE" in tail else RuntimeError
                raise error(f"Azurite exited at startup with code {code}:\n{tail}")
            # Azurite's own word, not just open ports: another process may hold one of them.
            if self.log_tail().count("successfully listening") >= len(self.ports) and all(
                _port_open(port) for port in self.ports.values()
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Azurite did not open ports {self.ports} within {timeout:.0f} s")

    @property
    def pid(self) -> int | None:
        """Azurite's process id while it runs (the benchmark reads its CPU time)."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        """Azurite's output while running: start-up lines, then one access-log line per request."""
        return self._log_path

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._own_location and self.location is not None:
            shutil.rmtree(self.location, ignore_errors=True)

    def wait(self) -> int:
        """Block until Azurite exits (the CLI's foreground mode)."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> AzuriteProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
