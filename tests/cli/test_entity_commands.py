"""The entity commands as a user runs them, against Azurite with an in-process worker running
the end-to-end app's entities (``tests/e2e/entity_apps.py``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durablehub.cli.main import app
from durablehub.taskhub.hub import TaskHub
from durablehub.worker import Worker
from tests.cli.test_instance_commands import cli, runner
from tests.e2e.apps import app as e2e_app

pytestmark = pytest.mark.azurite


@pytest.fixture
def env(hub: TaskHub) -> Iterator[dict[str, str]]:
    """A fresh hub with a worker for the end-to-end app (its entities included)."""
    settings = hub.settings
    with Worker(e2e_app, settings):
        yield {
            "AzureWebJobsStorage": settings.connection_string.get_secret_value(),
            "DURABLEHUB_TASK_HUB": settings.task_hub,
        }


def wait_state(env: dict[str, str], name: str, key: str, expected: Any, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        result = runner.invoke(app, ["entity", "get", name, key, "--json"], env=env)
        if result.exit_code == 0:
            payload = json.loads(result.output)
            if payload["state"] == expected:
                return payload
        else:
            assert "no entity" in result.output, result.output
        assert time.monotonic() < deadline, result.output
        time.sleep(0.1)


def test_signal_and_get(env: dict[str, str]) -> None:
    key = f"acct-{uuid.uuid4().hex[:8]}"
    assert "no entity '@account@" in cli(env, "entity", "get", "account", key, code=1)
    out = cli(env, "entity", "signal", "Account", key, "deposit", "--input", "5")
    assert out.strip() == f"signal 'deposit' sent to @account@{key}"
    payload = wait_state(env, "account", key, 5)
    assert payload["entityId"] == {"name": "account", "key": key}
    assert payload["backlogQueueSize"] == 0 and payload["lockedBy"] is None

    text = cli(env, "entity", "get", "ACCOUNT", key)
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in text.splitlines())
    assert lines["entity"].strip() == f"@account@{key}"
    assert lines["state"].strip() == "5"
    assert "UTC" in text and "locked by  -" in text

    cart = f"cart-{uuid.uuid4().hex[:8]}"
    cli(env, "entity", "signal", "ShoppingCart", cart, "add_item", "-i", '"apple"')
    wait_state(env, "shoppingcart", cart, ["apple"])


def test_signal_at_a_time(env: dict[str, str]) -> None:
    key = f"later-{uuid.uuid4().hex[:8]}"
    due = datetime.now(UTC) + timedelta(seconds=2)
    out = cli(env, "entity", "signal", "account", key, "deposit", "--input", "9", "--at", due.isoformat())
    assert f"sent to @account@{key}, due " in out
    assert "no entity" in cli(env, "entity", "get", "account", key, code=1)  # not yet
    wait_state(env, "account", key, 9)
    # A naive time is UTC (and one in the past is delivered at once).
    naive = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    cli(env, "entity", "signal", "account", key, "deposit", "--input", "1", "--at", naive)
    wait_state(env, "account", key, 10)


def test_list(env: dict[str, str]) -> None:
    prefix = f"ls{uuid.uuid4().hex[:6]}"
    keys = [f"{prefix}-{i}" for i in range(3)]
    for i, key in enumerate(keys):
        cli(env, "entity", "signal", "account", key, "deposit", "--input", str(i + 1))
    cli(env, "entity", "signal", "ShoppingCart", f"{prefix}-cart", "add_item", "--input", '"fig"')
    for i, key in enumerate(keys):
        wait_state(env, "account", key, i + 1)
    wait_state(env, "shoppingcart", f"{prefix}-cart", ["fig"])

    # The whole hub's entities, then by name prefix, then by '@name@key-prefix'.
    every = json.loads(cli(env, "entity", "list", "--all", "--json"))
    assert {e["entityId"]["key"] for e in every["entities"]} == {*keys, f"{prefix}-cart"}
    assert every["continuationToken"] is None
    assert all("state" not in e for e in every["entities"])
    accounts = json.loads(cli(env, "entity", "list", "acc", "--state", "--all", "--json"))["entities"]
    assert sorted((e["entityId"]["key"], e["state"]) for e in accounts) == [
        (k, i + 1) for i, k in enumerate(keys)
    ]
    page = json.loads(cli(env, "entity", "list", f"@account@{prefix}-", "--top", "2", "--json"))
    assert len(page["entities"]) <= 2 and page["continuationToken"]
    rest = json.loads(
        cli(
            env,
            "entity",
            "list",
            f"@account@{prefix}-",
            "--continuation-token",
            page["continuationToken"],
            "--json",
        )
    )
    assert sorted(e["entityId"]["key"] for e in page["entities"] + rest["entities"]) == keys

    text = cli(env, "entity", "list", "Shopping", "--state")
    header, *rows = text.splitlines()
    assert header.split() == ["NAME", "KEY", "UPDATED", "WAITING", "LOCKED", "BY", "STATE"]
    assert len(rows) == 1 and rows[0].split()[:2] == ["shoppingcart", f"{prefix}-cart"]
    assert rows[0].endswith('["fig"]')
    assert cli(env, "entity", "list", "nosuch").splitlines() == ["NAME  KEY  UPDATED  WAITING  LOCKED BY"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("entity", "get", "a@b", "k"), "must not contain '@'"),
        (("entity", "get", "account", "a/b"), "must not contain '/'"),
        (("entity", "signal", "account", "k", "deposit", "--input", "{bad"), "input is not valid JSON"),
        (("entity", "signal", "account", "k", "deposit", "--at", "tomorrow"), "not an ISO 8601 time"),
        (("entity", "signal", "account", "k", ""), "operation must be a non-empty string"),
        (("entity", "list", "--continuation-token", "garbage!"), "continuation"),
    ],
)
def test_errors_are_one_line(env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    assert message in cli(env, *args, code=1)
