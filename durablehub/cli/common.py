"""What every ``durablehub`` command shares: its options, settings, hub and client, and how
errors become one line.

Errors are one readable line on stderr and a non-zero exit code, never a traceback: a
``DurableHubError`` says what is wrong, an unreachable endpoint or a refused credential is
named as such (without echoing the connection string).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from durablehub.errors import DurableHubError

T = TypeVar("T")

TaskHubOption = Annotated[
    str | None,
    typer.Option(
        "--task-hub", "-t", envvar="DURABLEHUB_TASK_HUB", help="Task hub name (DURABLEHUB_TASK_HUB)."
    ),
]
ConnectionOption = Annotated[
    str | None,
    typer.Option(
        "--connection-string",
        "-c",
        envvar="AzureWebJobsStorage",
        show_envvar=True,
        show_default=False,
        help="Storage connection string (AzureWebJobsStorage); AzureWebJobsStorage__* also work.",
    ),
]
PartitionsOption = Annotated[
    int | None,
    typer.Option(
        "--partitions",
        "-p",
        envvar="DURABLEHUB_PARTITION_COUNT",
        help="Control-queue partitions, 1-16 (default 4).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line and exit code 1."""
    try:
        yield
    except DurableHubError as exc:
        raise fail(str(exc)) from None
    except ClientAuthenticationError as exc:
        raise fail(
            f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
            "SAS token or identity"
        ) from None
    except ServiceRequestError as exc:
        raise fail(
            f"cannot reach the storage account: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        ) from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise fail(
                f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
                "SAS token or identity"
            ) from None
        raise fail(
            f"storage request failed (HTTP {exc.status_code}, {exc.error_code or 'no error code'})"
        ) from None


def load_settings(task_hub: str | None, connection_string: str | None, partitions: int | None) -> Any:
    from durablehub.settings import TaskHubSettings

    values: dict[str, Any] = {"retry_total": 1}  # an interactive command should fail fast
    if task_hub:
        values["task_hub"] = task_hub
    if connection_string:
        values["connection_string"] = connection_string
    if partitions is not None:
        values["partition_count"] = partitions
    with storage_errors():
        return TaskHubSettings(**values)


def with_hub(settings: Any, action: Callable[[Any], T]) -> T:
    from durablehub.taskhub.hub import TaskHub

    with storage_errors(), TaskHub(settings) as hub:
        return action(hub)


def with_client(
    task_hub: str | None, connection_string: str | None, partitions: int | None, action: Callable[[Any], T]
) -> T:
    """Run ``action`` with a DurableClient; argument errors and waits that time out are one line."""
    from durablehub.client import DurableClient

    settings = load_settings(task_hub, connection_string, partitions)
    with storage_errors():
        try:
            with DurableClient(settings) as client:
                return action(client)
        except (ValueError, TypeError, TimeoutError) as exc:  # checked arguments, waits
            raise fail(str(exc)) from None


def json_argument(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"{what} is not valid JSON ({exc}); quote strings: --{what} '\"text\"'") from None


def import_app(target: str) -> Any:
    """Import ``module:attribute`` (or ``module``, finding its only App)."""
    import importlib

    from durablehub.app import App

    module_name, _, attribute = target.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"cannot import {module_name!r}: {exc}") from None
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, App):
            raise fail(f"{target!r} is not a durablehub.App (got {type(found).__name__})")
        return found
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        raise fail(
            f"module {module_name!r} has {len(apps)} durablehub.App objects; name one as {module_name}:app"
        )
    return apps[0]
