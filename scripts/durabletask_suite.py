"""Run durabletask-python's own backend-driven tests against ``durablehub sidecar``.

    .venv/bin/python scripts/durabletask_suite.py CHECKOUT [-k EXPR] [--files PATTERN ...]

CHECKOUT is a checkout of microsoft/durabletask-python at tag v1.9.0 (kept outside this
repository: never commit it). The script installs ``durabletask==1.9.0`` (with pytest,
pytest-asyncio and azure-storage-blob) into a virtualenv of its own, starts a private Azurite
on 127.0.0.1:10000-10002 (the large-payload tests look for it there), and runs every test file
under ``tests/durabletask`` that calls ``durabletask.testing.create_test_backend`` with a pytest
plugin in front that makes ``create_test_backend(port)`` start
``durablehub sidecar --host 127.0.0.1 --port PORT`` on a fresh task hub of that Azurite (its
``stop()`` stops the process gracefully; ``reset()`` has nothing to clear). The one exclusion is
``test_delayed_signal_normalization.py::TestDelayedTimerLifecycle``, which reads the in-memory
backend's internals. It prints the passed/failed count last; sidecar logs are kept per backend
in ``--logs``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from durablehub.azurite import AzuriteProcess  # noqa: E402

DURABLETASK_VERSION = "1.9.0"
EXCLUDED = ["tests/durabletask/test_delayed_signal_normalization.py::TestDelayedTimerLifecycle"]
REQUIREMENTS = [f"durabletask=={DURABLETASK_VERSION}", "pytest", "pytest-asyncio", "azure-storage-blob[aio]"]

# The plugin the suite's pytest loads (-p) before it imports any test module: every test
# file does ``from durabletask.testing import create_test_backend`` at import time.
PLUGIN = textwrap.dedent(
    '''
    """durablehub's stand-in for durabletask.testing.create_test_backend (written by
    scripts/durabletask_suite.py)."""

    import itertools
    import os
    import socket
    import subprocess
    import time
    import uuid
    from pathlib import Path

    import durabletask.testing

    _count = itertools.count(1)


    class SidecarBackend:
        def __init__(self, port: int) -> None:
            self.port = port
            self.hub = f"suite{uuid.uuid4().hex[:12]}"
            n = next(_count)
            logs = Path(os.environ["DURABLEHUB_SUITE_LOGS"])
            self._log = open(logs / f"sidecar-{n:04d}-{self.hub}.log", "wb")
            env = {**os.environ, "DURABLEHUB_TASK_HUB": self.hub}
            command = [os.environ["DURABLEHUB_SIDECAR"], "sidecar", "--host", "127.0.0.1"]
            command += ["--port", str(port)]
            self._process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while not self._listening():
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"durablehub sidecar did not start on {port}: see {self._log.name}")
                time.sleep(0.05)

        def _listening(self) -> bool:
            with socket.socket() as probe:
                probe.settimeout(0.2)
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        def start(self) -> str:
            return f"127.0.0.1:{self.port}"

        def stop(self, grace=None) -> None:
            if self._process.poll() is None:
                self._process.terminate()  # graceful: partitions released, streams ended
                try:
                    self._process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._log.close()

        def reset(self) -> None:
            pass  # every backend is a fresh task hub


    def create_test_backend(port: int = 50051, max_history_size: int = 10000) -> SidecarBackend:
        return SidecarBackend(port)


    durabletask.testing.create_test_backend = create_test_backend
    '''
)


def backend_test_files(checkout: Path) -> list[str]:
    found = []
    for path in sorted((checkout / "tests" / "durabletask").rglob("test_*.py")):
        if "create_test_backend" in path.read_text(encoding="utf-8"):
            found.append(str(path.relative_to(checkout)))
    return found


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    marker = venv / f".durabletask-{DURABLETASK_VERSION}"
    if not marker.exists():
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
        marker.touch()
    return python


def count(junit: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    root = ET.parse(junit).getroot()
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of microsoft/durabletask-python at v1.9.0")
    parser.add_argument(
        "--venv", type=Path, help="virtualenv for the suite (default: CHECKOUT/.durablehub-venv)"
    )
    parser.add_argument("--logs", type=Path, help="where sidecar logs go (default: a temporary folder)")
    parser.add_argument("--files", nargs="*", help="only test files whose path matches one of these regexes")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    args = parser.parse_args()

    checkout = args.checkout.resolve()
    files = backend_test_files(checkout)
    if not files:
        parser.error(f"{checkout} has no tests/durabletask/**/test_*.py that uses create_test_backend")
    if args.files:
        files = [f for f in files if any(re.search(p, f) for p in args.files)]
    sidecar = REPO / ".venv" / "bin" / "durablehub"
    if not sidecar.exists():
        parser.error(f"{sidecar} is missing: run scripts/setup.sh first")
    python = ensure_venv((args.venv or checkout / ".durablehub-venv").resolve())
    logs = (args.logs or Path(tempfile.mkdtemp(prefix="durabletask-suite-"))).resolve()
    logs.mkdir(parents=True, exist_ok=True)

    with (
        tempfile.TemporaryDirectory(prefix="durablehub-suite-") as tmp,
        AzuriteProcess(blob_port=10000, queue_port=10001, table_port=10002) as azurite,
    ):
        (Path(tmp) / "durablehub_backend.py").write_text(PLUGIN, encoding="utf-8")
        junit = Path(tmp) / "junit.xml"
        env = {
            **os.environ,
            "PYTHONPATH": tmp,
            "DURABLEHUB_SIDECAR": str(sidecar),
            "DURABLEHUB_SUITE_LOGS": str(logs),
            "AzureWebJobsStorage": azurite.connection_string,
        }
        command = [
            str(python),
            "-m",
            "pytest",
            "-p",
            "durablehub_backend",
            "-q",
            "-rfE",
            f"--junitxml={junit}",
        ]
        command += [f"--deselect={node}" for node in EXCLUDED]
        if args.keyword:
            command += ["-k", args.keyword]
        started = time.monotonic()
        subprocess.run([*command, *files], cwd=checkout, env=env)
        elapsed = time.monotonic() - started
        totals = count(junit) if junit.exists() else None
    if totals is None:
        print("the suite did not run (no report)")
        return 1
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print(
        f"durabletask-python v{DURABLETASK_VERSION} suite against durablehub sidecar "
        f"({elapsed:.0f} s; logs in {logs}):"
    )
    print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
