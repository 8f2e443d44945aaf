"""``durablehub hub`` and ``durablehub azurite`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from durablehub.azurite import free_port
from durablehub.cli.main import app

pytestmark = pytest.mark.azurite
runner = CliRunner()


def test_create_info_delete(azurite, hub_name: str) -> None:
    env = {"AzureWebJobsStorage": azurite.connection_string, "DURABLEHUB_TASK_HUB": hub_name}
    created = runner.invoke(app, ["hub", "create", "--partitions", "2"], env=env)
    assert created.exit_code == 0, created.output
    assert f"task hub '{hub_name}' is ready: 2 partitions" in created.output

    info = runner.invoke(app, ["hub", "info", "--partitions", "2", "--json"], env=env)
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    low = hub_name.lower()
    assert data["controlQueues"] == [f"{low}-control-00", f"{low}-control-01"]
    assert data["queueLengths"] == {f"{low}-control-00": 0, f"{low}-control-01": 0, f"{low}-workitems": 0}

    table = runner.invoke(app, ["hub", "info", "-p", "2"], env=env)
    assert f"{hub_name}History, {hub_name}Instances" in table.output

    mismatch = runner.invoke(app, ["hub", "info"], env=env)  # default 4 partitions
    assert mismatch.exit_code == 1 and "exists with 2 partitions, but 4 are configured" in mismatch.output

    deleted = runner.invoke(app, ["hub", "delete", "--yes"], env=env)
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    missing = runner.invoke(app, ["hub", "info"], env=env)
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_errors_are_one_line_without_secrets(azurite) -> None:
    bad_hub = runner.invoke(app, ["hub", "create", "-t", "no-dashes", "-c", azurite.connection_string])
    assert bad_hub.exit_code == 1 and "invalid task hub name 'no-dashes'" in bad_hub.output
    assert "Traceback" not in bad_hub.output

    wrong_key = azurite.connection_string.replace("AccountKey=", "AccountKey=AAAA")
    refused = runner.invoke(app, ["hub", "create", "-t", "KeyHub", "-c", wrong_key])
    assert refused.exit_code == 1 and "refused the credentials (HTTP 403)" in refused.output
    assert "AAAA" not in refused.output

    started = time.monotonic()
    unreachable = runner.invoke(
        app,
        [
            "hub",
            "info",
            "-t",
            "GoodHub",
            "-c",
            f"AccountName=x;AccountKey=eA==;BlobEndpoint=http://127.0.0.1:{free_port()}/x;"
            f"QueueEndpoint=http://127.0.0.1:1/x;TableEndpoint=http://127.0.0.1:1/x",
        ],
    )
    assert unreachable.exit_code == 1 and "cannot reach the storage account" in unreachable.output
    assert time.monotonic() - started < 15


def test_azurite_command_prints_connection_string_and_stops_on_ctrl_c(tmp_path) -> None:
    ports = [str(free_port()) for _ in range(3)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durablehub",
            "azurite",
            "--location",
            str(tmp_path / "data"),
            "--blob-port",
            ports[0],
            "--queue-port",
            ports[1],
            "--table-port",
            ports[2],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    try:
        lines = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert f"QueueEndpoint=http://127.0.0.1:{ports[1]}/devstoreaccount1" in output, output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped." in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
