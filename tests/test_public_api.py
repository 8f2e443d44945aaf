"""The public names of ``import durablehub`` (spec §5) are pinned: removing one is a break."""

from __future__ import annotations

import durablehub


def test_all_is_sorted_and_importable() -> None:
    assert durablehub.__all__ == sorted(durablehub.__all__)
    for name in durablehub.__all__:
        assert getattr(durablehub, name) is not None


def test_spec_names_available_so_far() -> None:
    expected = {
        "App",
        "TaskHubSettings",
        "OrchestrationContext",
        "ActivityContext",
        "when_all",
        "when_any",
        "RetryPolicy",
        "TaskFailedError",
        "FailureDetails",
        "NonDeterminismError",
        "OrchestrationStatus",
    }
    assert expected <= set(durablehub.__all__)
    assert [s.name for s in durablehub.OrchestrationStatus] == [
        "RUNNING",
        "COMPLETED",
        "CONTINUED_AS_NEW",
        "FAILED",
        "CANCELED",
        "TERMINATED",
        "PENDING",
        "SUSPENDED",
    ]


def test_entity_names_are_public() -> None:
    expected = {
        "DurableEntity",
        "EntityContext",
        "EntityInstanceId",
        "EntityLock",
        "EntityMetadata",
        "EntityQuery",
        "CleanEntityStorageResult",
    }
    assert expected <= set(durablehub.__all__)
