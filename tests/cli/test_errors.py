"""Every command turns what goes wrong into one line on stderr and exit code 1: never a
traceback, never local variables, never a key or a SAS signature.

Run as a user runs them (``python -m durablehub``, a real process), so that typer's own
exception printing is what would show; against endpoints on loopback that fail in the ways
real networks do: a server that drops each connection, a port where nothing listens.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import typer
from azure.core.exceptions import AzureError, DecodeError, ServiceRequestError, ServiceResponseError
from azure.identity import CredentialUnavailableError

from durablehub.azurite import free_port
from durablehub.cli.common import storage_errors

KEY = "U0VDUkVUS0VZLU1VU1QtTk9ULUxFQUs="
SIGNATURE = "TOPSECRETSIGNATURE"
SAS = f"sv=2023-01-01&ss=bqt&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&sig={SIGNATURE}"

COMMANDS = [
    ["hub", "info"],
    ["hub", "create"],
    ["status", "some-instance"],
    ["list"],
    ["purge", "some-instance"],
    ["entity", "get", "counter", "a"],
    ["poison", "list"],
    ["poison", "requeue", "--all"],
]


@pytest.fixture(scope="module")
def dropping_port() -> Iterator[int]:
    """A loopback server that reads each request and closes the connection without a reply:
    azure-core raises ServiceResponseError, which no command expected before."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def connection_string(port: int, auth: str) -> str:
    url = f"http://127.0.0.1:{port}/devstoreaccount1"
    endpoints = ";".join(f"{service}Endpoint={url}" for service in ("Blob", "Queue", "Table"))
    return f"{endpoints};{auth}"


def run_cli(args: list[str], connection: str) -> subprocess.CompletedProcess[str]:
    options = ["--task-hub", "ErrorsHub", "--connection-string", connection]
    return subprocess.run(
        [sys.executable, "-m", "durablehub", *args, *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "TERM": "dumb"},
    )


def assert_one_clean_line(done: subprocess.CompletedProcess[str], *secrets: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "locals" not in output and "╭" not in output, output
    for secret in secrets:
        assert secret not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_dropped_connection_is_one_line(dropping_port: int, args: list[str]) -> None:
    done = run_cli(args, connection_string(dropping_port, f"AccountName=devstoreaccount1;AccountKey={KEY}"))
    line = assert_one_clean_line(done, KEY)
    assert "storage" in line and "connection" in line


@pytest.mark.parametrize("args", [["hub", "info"], ["status", "some-instance"]], ids=" ".join)
def test_an_unreachable_endpoint_never_shows_the_sas(args: list[str]) -> None:
    done = run_cli(args, connection_string(free_port(), f"SharedAccessSignature={SAS}"))
    line = assert_one_clean_line(done, SIGNATURE)
    assert "cannot reach the storage account" in line


def test_the_typer_app_shows_no_pretty_traceback_or_locals() -> None:
    from durablehub.cli.main import app

    assert app.pretty_exceptions_enable is False
    assert app.pretty_exceptions_show_locals is False


def test_an_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from durablehub.cli import hub, main

    def broken(*_: object) -> None:
        raise RuntimeError(f"a bug, near AccountKey={KEY};")

    monkeypatch.setattr(hub, "with_hub", broken)
    monkeypatch.setattr(sys, "argv", ["durablehub", "hub", "info", "-c", "UseDevelopmentStorage=true"])
    with pytest.raises(SystemExit) as exited:
        main.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert KEY not in err and "Traceback" not in err
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: a bug, near AccountKey=***; "
        "(set DURABLEHUB_TRACEBACK=1 to see the traceback)"
    ]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            ServiceResponseError("Connection aborted."),
            "the storage account closed the connection or sent no valid response: "
            "ServiceResponseError: Connection aborted.",
        ),
        (DecodeError("bad XML"), "storage client error: DecodeError: bad XML"),
        (AzureError("odd\nsecond line"), "storage client error: AzureError: odd"),
        (
            CredentialUnavailableError("no managed identity endpoint"),
            "could not get a token for the storage account: "
            "CredentialUnavailableError: no managed identity endpoint",
        ),
        (
            ServiceRequestError(f"GET https://a.example/q?sv=1&sig={SIGNATURE} failed"),
            "cannot reach the storage account: "
            "ServiceRequestError: GET https://a.example/q?sv=1&sig=*** failed",
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_each_kind_of_sdk_error_is_named(
    error: Exception, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as exited, storage_errors():
        raise error
    assert exited.value.exit_code == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {line}"]
