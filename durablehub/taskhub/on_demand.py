"""Queues, tables and containers of a hub made when a request finds them missing.

A client can meet a hub that is not whole: made by a worker that is still making it, by older
durablehub or the C# provider (both write ``taskhub.json`` before the queues and tables), or
deleted under it. A write that fails because its queue or table does not exist makes it
(idempotently, as ``AsyncTaskHub.create`` would) and is tried once more; a read of a missing
table answers as an empty one. Only a failed request pays for this: a whole hub costs
nothing more (README, "The task hub").

``async_made_on_demand`` is for the asyncio adapters; the sync ones, generated from them
(scripts/unasync.py), call ``made_on_demand``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError

from durablehub.errors import TaskHubNotFoundError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Resource:
    """A queue, table or container of a hub: its kind, its name, and the error code a request
    gets when it does not exist."""

    kind: str
    name: str
    missing_code: str

    def is_missing(self, exc: BaseException) -> bool:
        """``exc`` says this resource does not exist (not a missing row or message in it)."""
        return isinstance(exc, ResourceNotFoundError) and error_code(exc) == self.missing_code

    def still_missing(self) -> TaskHubNotFoundError:
        return TaskHubNotFoundError(
            f"the {self.kind} {self.name!r} of the task hub does not exist, and making it did not "
            f"help (Azure Storage refuses to make a queue or table again for about 30 s after it "
            f"was deleted); try again later"
        )


def error_code(exc: ResourceNotFoundError) -> str | None:
    """The service's error code. The tables SDK re-raises some errors (an insert's) without
    reading it, so the response's ``x-ms-error-code`` header, or its OData body, is read too."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(code.value if isinstance(code, Enum) else code)
    response: Any = exc.response  # azure-core's transport-neutral type has no headers in its stubs
    if response is None:
        return None
    header = response.headers.get("x-ms-error-code")
    if header:
        return str(header)
    try:
        body = json.loads(response.text())
        return str(body["odata.error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def queue(name: str) -> Resource:
    return Resource("queue", name, "QueueNotFound")


def table(name: str) -> Resource:
    return Resource("table", name, "TableNotFound")


def container(name: str) -> Resource:
    return Resource("container", name, "ContainerNotFound")


def blob(container: str, name: str) -> Resource:
    """A blob the hub is made with (a partition's lease), not a payload that comes and goes."""
    return Resource("blob", f"{container}/{name}", "BlobNotFound")


def made_on_demand(resource: Resource, write: Callable[[], T], make: Callable[[], None]) -> T:
    """``write()``; if ``resource`` is missing, ``make()`` it and ``write()`` once more
    (the sync twin of ``async_made_on_demand``).

    Raises:
        TaskHubNotFoundError: the resource is still missing after it was made.
    """
    try:
        return write()
    except ResourceNotFoundError as exc:
        if not resource.is_missing(exc):
            raise
    make()
    try:
        return write()
    except ResourceNotFoundError as exc:
        if not resource.is_missing(exc):
            raise
        raise resource.still_missing() from exc


async def async_made_on_demand(
    resource: Resource, write: Callable[[], Awaitable[T]], make: Callable[[], Awaitable[None]]
) -> T:
    """``await write()``; if ``resource`` is missing, ``await make()`` it and write once more.

    Raises:
        TaskHubNotFoundError: the resource is still missing after it was made.
    """
    try:
        return await write()
    except ResourceNotFoundError as exc:
        if not resource.is_missing(exc):
            raise
    await make()
    try:
        return await write()
    except ResourceNotFoundError as exc:
        if not resource.is_missing(exc):
            raise
        raise resource.still_missing() from exc
