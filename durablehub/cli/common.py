"""What every ``durablehub`` command shares: its options, settings, hub and client, and how
errors become one line.

Errors are one readable line on stderr and exit code 1, never a traceback or local variables
(which would show settings, keys and payloads): a ``DurableHubError`` says what is wrong, a
refused credential, an unreachable endpoint or any other Azure SDK error is named as such, and
every line is passed through ``redact`` so no key or SAS signature is echoed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from durablehub.errors import DurableHubError
from durablehub.taskhub.accounts import redact

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
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        envvar="DURABLEHUB_METRICS_PORT",
        show_default=False,
        help="Serve Prometheus metrics at /metrics on this port (needs pip install 'durablehub[otel]').",
    ),
]
MetricsHostOption = Annotated[
    str,
    typer.Option(
        "--metrics-host",
        help="Interface of the metrics endpoint (it has no authentication: 0.0.0.0 opens it to every "
        "machine that reaches this one).",
    ),
]


def start_metrics(port: int | None, host: str, settings: Any) -> None:
    """Serve the Prometheus endpoint when a port is given; a clear error otherwise."""
    if port is None:
        return
    from durablehub.errors import ConfigurationError
    from durablehub.telemetry.logs import announce
    from durablehub.telemetry.prometheus import serve_metrics

    try:
        serve_metrics(port, host, settings)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    announce(f"metrics: http://{host}:{port}/metrics")


def typer_app(**options: Any) -> typer.Typer:
    """A Typer app that never prints a pretty traceback with its local variables."""
    return typer.Typer(pretty_exceptions_enable=False, pretty_exceptions_show_locals=False, **options)


def fail(message: str, code: int = 1) -> typer.Exit:
    say_error(redact(message))
    return typer.Exit(code)


def say_error(message: str) -> None:
    """``error: ...`` on stderr, or an ERROR record with DURABLEHUB_LOG_FORMAT=json."""
    from durablehub.telemetry.logs import json_logs

    try:
        as_json = json_logs()
    except ValueError:  # the format setting itself is wrong: say so as text
        as_json = False
    if as_json:
        logging.getLogger("durablehub.cli").error(message)
    else:
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else '(no message)'}"


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line and exit code 1."""
    try:
        yield
    except DurableHubError as exc:
        raise fail(str(exc)) from None
    except ClientAuthenticationError as exc:
        if exc.status_code is None:  # azure-identity: no token was obtained, nothing was sent
            raise fail(f"could not get a token for the storage account: {_first_line(exc)}") from None
        raise fail(
            f"storage refused the credentials (HTTP {exc.status_code}): check the account key, "
            "SAS token or identity"
        ) from None
    except ServiceRequestError as exc:
        raise fail(f"cannot reach the storage account: {_first_line(exc)}") from None
    except ServiceResponseError as exc:
        raise fail(
            f"the storage account closed the connection or sent no valid response: {_first_line(exc)}"
        ) from None
    except HttpResponseError as exc:
        status = getattr(exc, "status_code", None)  # subclasses such as DecodeError may lack it
        if status in (401, 403):
            raise fail(
                f"storage refused the credentials (HTTP {status}): check the account key, "
                "SAS token or identity"
            ) from None
        if status is None:
            raise fail(f"storage client error: {_first_line(exc)}") from None
        code = getattr(exc, "error_code", None) or "no error code"
        raise fail(f"storage request failed (HTTP {status}, {code})") from None
    except AzureError as exc:  # the SDK's other errors: decoding, streams, credentials, ...
        raise fail(f"storage client error: {_first_line(exc)}") from None


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
    except Exception as exc:  # the user's module is broken: say where, without a traceback
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        raise fail(
            f"importing {module_name!r} raised {_first_line(exc)} ({frame.filename}, line {frame.lineno})"
        ) from None
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


def exit_now(code: int) -> None:
    """Exit at once: threads running user code cannot be stopped, and would be waited for."""
    from durablehub.telemetry.provider import flush_tracing

    flush_tracing()  # os._exit runs no atexit handler: export the spans still batched
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
