"""The two clients are twins: same methods and parameters, the same text but for async/await."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from durablehub.async_client import AsyncDurableClient
from durablehub.client import DurableClient

ROOT = Path(__file__).resolve().parents[2]
DURABLETASK_METHODS = {
    "schedule_new_orchestration",
    "get_orchestration_state",
    "wait_for_orchestration_start",
    "wait_for_orchestration_completion",
    "raise_orchestration_event",
    "get_orchestration_history",
    "terminate_orchestration",
    "suspend_orchestration",
    "resume_orchestration",
    "rewind_orchestration",
    "restart_orchestration",
    "purge_orchestration",
    "purge_orchestrations_by",
    "get_all_orchestration_states",
    "close",
}


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name == "__init__")
    }


def shape(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    """Names, kinds and defaults; annotations differ only by TaskHub vs AsyncTaskHub."""
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_both_clients_have_the_same_methods_and_parameters() -> None:
    sync, asynchronous = public_methods(DurableClient), public_methods(AsyncDurableClient)
    assert sync.keys() == asynchronous.keys()
    assert DURABLETASK_METHODS <= sync.keys()
    for name in sync:
        assert shape(sync[name]) == shape(asynchronous[name]), name
        assert str(sync[name].return_annotation) == str(asynchronous[name].return_annotation).replace(
            "Async", ""
        )


def test_every_async_method_is_a_coroutine_and_no_sync_one_is() -> None:
    for name in public_methods(AsyncDurableClient):
        if name != "__init__":
            assert inspect.iscoroutinefunction(getattr(AsyncDurableClient, name)), name
            assert not inspect.iscoroutinefunction(getattr(DurableClient, name)), name
    assert hasattr(DurableClient, "__enter__") and hasattr(AsyncDurableClient, "__aenter__")


def test_sync_client_is_the_async_client_without_async_and_await() -> None:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    source = ROOT / "durablehub" / "async_client.py"
    expected = unasync.header(source) + unasync.convert(source.read_text())
    assert (ROOT / "durablehub" / "client.py").read_text() == expected, (
        "durablehub/client.py drifted from durablehub/async_client.py: edit the async client and "
        "regenerate the sync one with scripts/unasync.py"
    )
