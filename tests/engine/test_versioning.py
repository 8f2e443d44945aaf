"""Versioning without storage: the comparison, the dispatcher's check matrix, the options,
registries with versions, sub-orchestration and continue-as-new versions, and is_patched."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durablehub as dh
from durablehub.app import UnknownVersionError
from durablehub.engine import history as ev
from durablehub.engine.actions import CompleteOrchestration, CreateSubOrchestration, ScheduleTask
from durablehub.engine.episode import plan_episode
from durablehub.engine.patches import patches_recorded
from durablehub.engine.replay import OrchestrationExecutor
from durablehub.errors import ConfigurationError
from durablehub.models import OrchestrationStatus
from durablehub.replay_check import check_history
from durablehub.runtime.options import WorkerOptions
from durablehub.runtime.versions import EpisodeRejected, VersionGate
from durablehub.testing import history as h
from durablehub.versioning import version_mismatch

S = dh.VersionMatchStrategy
F = dh.VersionFailureStrategy

# --- compare_versions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # DurableTask.Core's VersionSettingsTests rows
        ("1.0.0", "1.0.0", 0),
        ("1.1.0", "1.0.0", 1),
        ("1.0.0", "1.1.0", -1),
        ("1", "1", 0),
        ("2", "1", 1),
        ("1", "2", -1),
        ("", "1", -1),
        ("1", "", 1),
        ("", "", 0),
        # empty and missing are the same, and older than anything
        (None, "", 0),
        (None, "alpha", -1),
        ("  ", "0", -1),
        # numbers compare as numbers, trailing zeros count for nothing (differs from .NET)
        ("10", "9", 1),
        ("1.10", "1.9", 1),
        ("1.0", "1.0.0", 0),
        ("1.2.3.4.5", "1.2.3.4.6", -1),
        # anything else: ordinal, ignoring case (as .NET's OrdinalIgnoreCase)
        ("beta", "Alpha", 1),
        ("V2", "v2", 0),
        ("1.0-beta", "1.0", 1),
    ],
)
def test_compare_versions(a: str | None, b: str | None, expected: int) -> None:
    assert dh.compare_versions(a, b) == expected
    assert dh.compare_versions(b, a) == -expected


# --- the check: strategy x worker version x instance version -------------------------------

_MATRIX = [
    # (strategy, worker version, instance version, runs)
    (S.NONE, "1.0", "2.0", True),
    (S.NONE, None, "2.0", True),
    (S.NONE, "1.0", None, True),
    (S.STRICT, "1.0", "1.0", True),
    (S.STRICT, "1.0", "1.0.0", True),
    (S.STRICT, "1.0", "2.0", False),
    (S.STRICT, "2.0", "1.0", False),
    (S.STRICT, "1.0", None, False),
    (S.STRICT, "1.0", "", False),
    (S.STRICT, None, None, True),
    (S.STRICT, "", None, True),
    (S.STRICT, None, "1.0", False),
    (S.CURRENT_OR_OLDER, "2.0", "1.0", True),
    (S.CURRENT_OR_OLDER, "2.0", "2.0", True),
    (S.CURRENT_OR_OLDER, "2.0", None, True),
    (S.CURRENT_OR_OLDER, "2.0", "", True),
    (S.CURRENT_OR_OLDER, "1.0", "2.0", False),
    (S.CURRENT_OR_OLDER, None, "1.0", False),
    (S.CURRENT_OR_OLDER, None, None, True),
    (S.CURRENT_OR_OLDER, "1.9", "1.10", False),
]


@pytest.mark.parametrize(("strategy", "worker", "instance", "runs"), _MATRIX)
@pytest.mark.parametrize("failure", [F.REJECT, F.FAIL])
def test_version_check_matrix(
    strategy: dh.VersionMatchStrategy, worker: str | None, instance: str | None, runs: bool, failure: F
) -> None:
    options = dh.VersioningOptions(version=worker, match_strategy=strategy, failure_strategy=failure)
    gate = VersionGate(options, base_delay_seconds=1)
    start = h.started("Orch", version=instance)
    if runs:
        assert gate.check(start, next_id=3) is None
        return
    if failure is F.REJECT:
        with pytest.raises(EpisodeRejected) as rejected:
            gate.check(start, next_id=3)
        reason = rejected.value.reason
    else:
        result = gate.check(start, next_id=3)
        assert result is not None
        completion = result.completion
        assert completion is not None and completion.id == 3
        assert completion.status is OrchestrationStatus.FAILED
        details = completion.failure_details
        assert details is not None and details.error_type == "VersionMismatch" and details.is_non_retriable
        assert result.actions == (completion,)  # user code not run: nothing else happens
        reason = details.message
    # the message names both versions
    assert (repr(instance) if instance else "(none)") in reason
    assert (repr(worker) if worker else "(none)") in reason


def test_no_policy_runs_everything() -> None:
    assert version_mismatch(None, "9.0") is None
    assert version_mismatch(dh.VersioningOptions(), "9.0") is None


def test_rejections_back_off_up_to_a_cap_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    gate = VersionGate(dh.VersioningOptions(version="1.0", match_strategy=S.STRICT), base_delay_seconds=1)
    start = h.started("Orch", version="2.0")
    with caplog.at_level("DEBUG", logger="durablehub.worker"):
        delays = [gate.rejected(start, "why") for _ in range(8)]
    assert delays == sorted(delays) and delays[0] == 1 and delays[-1] == delays[-2] > delays[0]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "'test-instance'" in warnings[0].getMessage()
    gate.ran("test-instance")  # once it ran, a later rejection starts over
    assert gate.rejected(start, "why") == 1


def test_versioning_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLEHUB_VERSION", "2.0")
    monkeypatch.setenv("DURABLEHUB_DEFAULT_VERSION", "2.0")
    monkeypatch.setenv("DURABLEHUB_VERSION_MATCH_STRATEGY", "CURRENT_OR_OLDER")
    monkeypatch.setenv("DURABLEHUB_VERSION_FAILURE_STRATEGY", "fail")
    assert WorkerOptions().versioning == dh.VersioningOptions(
        version="2.0", default_version="2.0", match_strategy=S.CURRENT_OR_OLDER, failure_strategy=F.FAIL
    )
    monkeypatch.setenv("DURABLEHUB_VERSION_MATCH_STRATEGY", "newest")
    with pytest.raises(ValueError, match="version_match_strategy"):
        WorkerOptions()


def test_versioning_options_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="not a VersionMatchStrategy; choose one of NONE, STRICT"):
        dh.VersioningOptions(match_strategy="latest")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="version must be a string"):
        dh.VersioningOptions(version=2)  # type: ignore[arg-type]
    assert dh.VersioningOptions(failure_strategy="FAIL").failure_strategy is F.FAIL  # type: ignore[arg-type]


def test_worker_versioning_replaces_the_options() -> None:
    options = WorkerOptions(version="1.0").with_versioning(dh.VersioningOptions(version="2.0"))
    assert options.versioning.version == "2.0"


# --- registries with versions --------------------------------------------------------------


def _registry() -> dh.App:
    app = dh.App()

    @app.orchestrator(name="Order", version="1.0")
    def order_v1(ctx: dh.OrchestrationContext, _: object) -> str:
        return "v1"

    @app.orchestrator(name="Order", version="2.0")
    def order_v2(ctx: dh.OrchestrationContext, _: object) -> str:
        return "v2"

    return app


def test_each_version_runs_its_own_code() -> None:
    app = _registry()
    assert app.get_orchestrator("Order", "1.0").fn(None, None) == "v1"
    assert app.get_orchestrator("Order", "2.0.0").fn(None, None) == "v2"
    assert app.orchestrator_names == ["Order"]
    with pytest.raises(UnknownVersionError, match=r"no code for version '3.0'.*'1.0', '2.0'"):
        app.get_orchestrator("Order", "3.0")
    with pytest.raises(UnknownVersionError, match=r"no code for version \(none\)"):
        app.get_orchestrator("Order", None)


def test_unversioned_registration_is_the_fallback() -> None:
    app = _registry()
    app.add_orchestrator(lambda ctx, _: "any", name="Order")
    assert app.get_orchestrator("Order", "2.0").fn(None, None) == "v2"
    assert app.get_orchestrator("Order", "3.0").fn(None, None) == "any"
    assert app.get_orchestrator("Order", None).fn(None, None) == "any"
    assert app.orchestrator_versions("Order") == ["1.0", "2.0", None]


def test_duplicate_versions_are_refused() -> None:
    app = _registry()
    with pytest.raises(
        ConfigurationError, match=r"'1.0' is already registered \(the same version as '1.0.0'\)"
    ):
        app.add_orchestrator(lambda ctx, _: None, name="Order", version="1.0.0")
    with pytest.raises(
        ConfigurationError, match="version of orchestrator 'Order' must be a non-empty string"
    ):
        app.add_orchestrator(lambda ctx, _: None, name="Order", version=" ")


# --- versions the engine writes ------------------------------------------------------------


def test_sub_orchestration_gets_the_worker_default_not_the_parent_version() -> None:
    def parent(ctx: dh.OrchestrationContext, _: object):
        a = ctx.call_sub_orchestrator("Child")
        b = ctx.call_sub_orchestrator("Child", version="3.0")
        yield dh.when_all([a, b])

    executor = OrchestrationExecutor(parent, default_version="2.0")
    result = executor.execute([], [h.orchestrator_started(), h.started("Parent", version="1.0")])
    versions = [a.version for a in result.actions if isinstance(a, CreateSubOrchestration)]
    assert versions == ["2.0", "3.0"]
    plan = plan_episode(result, started=h.started("Parent", version="1.0"), now=h.T0)
    starts = [m.event for m in plan.messages if isinstance(m.event, ev.ExecutionStarted)]
    assert [s.version for s in starts] == ["2.0", "3.0"]
    created = [e for e in plan.history if isinstance(e, ev.SubOrchestrationInstanceCreated)]
    assert [c.version for c in created] == ["2.0", "3.0"]


def test_continue_as_new_with_a_new_version() -> None:
    def orch(ctx: dh.OrchestrationContext, n: int):
        assert ctx.version == "1.0"
        ctx.continue_as_new(n + 1, new_version="2.0")
        yield from ()

    start = h.started("Orch", 1, version="1.0")
    result = OrchestrationExecutor(orch).execute([], [h.orchestrator_started(), start])
    completion = result.completion
    assert isinstance(completion, CompleteOrchestration) and completion.new_version == "2.0"
    plan = plan_episode(result, started=start, now=h.T0)
    (next_start,) = [m.event for m in plan.next_generation if isinstance(m.event, ev.ExecutionStarted)]
    assert next_start.version == "2.0" and next_start.input == "2"


def test_ctx_version_is_none_without_one() -> None:
    seen: list[str | None] = []

    def orch(ctx: dh.OrchestrationContext, _: object) -> None:
        seen.append(ctx.version)

    OrchestrationExecutor(orch).execute([], [h.orchestrator_started(), h.started("Orch")])
    assert seen == [None]


# --- is_patched ----------------------------------------------------------------------------


def _patched_orch(ctx: dh.OrchestrationContext, _: object):
    first = ctx.is_patched("fix-1")
    yield ctx.create_timer(timedelta(seconds=1))
    again = ctx.is_patched("fix-1")
    assert again == first  # remembered for the execution
    if first:
        yield ctx.call_activity("New")
    else:
        yield ctx.call_activity("Old")
    return first


def _episode(executor: OrchestrationExecutor, past: list[ev.HistoryEvent], new: list[ev.HistoryEvent]):
    result = executor.execute(past, new)
    plan = plan_episode(result, started=h.started("Orch"), now=h.T0)
    return result, [*new, *plan.history]


def test_is_patched_is_true_and_recorded_in_a_new_execution() -> None:
    result, written = _episode(
        OrchestrationExecutor(_patched_orch), [], [h.orchestrator_started(), h.started("Orch")]
    )
    assert result.patches == ("fix-1",)
    assert patches_recorded(written) == {"fix-1"}
    generic = [e for e in written if isinstance(e, ev.GenericEvent)]
    assert len(generic) == 1 and generic[0].event_id == -1  # an event the reference skips


def test_is_patched_replays_what_history_recorded() -> None:
    _, history = _episode(
        OrchestrationExecutor(_patched_orch), [], [h.orchestrator_started(), h.started("Orch")]
    )
    fired = [h.orchestrator_started(), h.timer_fired(0, h.T0 + timedelta(seconds=1))]
    result = OrchestrationExecutor(_patched_orch).execute(history, fired)  # a cold replay (a crash, a move)
    assert result.patches == ()  # recorded already
    assert [a.name for a in result.actions if isinstance(a, ScheduleTask)] == ["New"]


def test_is_patched_is_false_for_a_history_without_it_and_stays_false() -> None:
    def old(ctx: dh.OrchestrationContext, _: object):
        yield ctx.create_timer(timedelta(seconds=1))
        yield ctx.call_activity("Old")

    _, history = _episode(OrchestrationExecutor(old), [], [h.orchestrator_started(), h.started("Orch")])
    fired = [h.orchestrator_started(), h.timer_fired(0, h.T0 + timedelta(seconds=1))]
    result = OrchestrationExecutor(_patched_orch).execute(history, fired)  # new code, old instance
    assert [a.name for a in result.actions if isinstance(a, ScheduleTask)] == ["Old"]
    assert result.patches == ()


def test_is_patched_rerun_after_a_lost_commit_decides_again() -> None:
    first, _ = _episode(
        OrchestrationExecutor(_patched_orch), [], [h.orchestrator_started(), h.started("Orch")]
    )
    again, _ = _episode(
        OrchestrationExecutor(_patched_orch), [], [h.orchestrator_started(), h.started("Orch")]
    )
    assert first.patches == again.patches == ("fix-1",)


def test_is_patched_refuses_an_empty_name() -> None:
    def orch(ctx: dh.OrchestrationContext, _: object) -> bool:
        return ctx.is_patched("")

    result = OrchestrationExecutor(orch).execute([], [h.orchestrator_started(), h.started("Orch")])
    completion = result.completion
    assert completion is not None and completion.status is OrchestrationStatus.FAILED
    assert completion.failure_details is not None
    assert "patch name must be a non-empty string" in completion.failure_details.message


def test_patch_records_of_others_are_ignored() -> None:
    assert (
        patches_recorded([ev.GenericEvent(data="not json durablehub.patches"), ev.GenericEvent(data=None)])
        == set()
    )


# --- replay-check --------------------------------------------------------------------------


def _in_flight_history(version: str | None = "1.0") -> list[ev.HistoryEvent]:
    return [
        h.orchestrator_started(),
        h.started("Order", version=version),
        h.task_scheduled(0, "Reserve"),
        h.orchestrator_completed(),
        h.orchestrator_started(),
        h.task_completed(0, "ok"),
        h.task_scheduled(1, "Ship"),
        h.orchestrator_completed(),
    ]


def _app_with(fn: object) -> dh.App:
    app = dh.App()
    app.add_orchestrator(fn, name="Order")  # type: ignore[arg-type]
    return app


def test_replay_check_names_the_first_differing_call() -> None:
    def reordered(ctx: dh.OrchestrationContext, _: object):
        yield ctx.call_activity("Ship")
        yield ctx.call_activity("Reserve")

    verdict = check_history(_app_with(reordered), _in_flight_history())
    assert verdict.nondeterministic
    assert verdict.problem is not None and "'Reserve'" in verdict.problem and "'Ship'" in verdict.problem


def test_replay_check_passes_code_that_branches_on_version_or_patch() -> None:
    def by_version(ctx: dh.OrchestrationContext, _: object):
        yield ctx.call_activity("Reserve")
        if dh.compare_versions(ctx.version, "2.0") >= 0:
            yield ctx.call_activity("Notify")
        yield ctx.call_activity("Ship")

    def by_patch(ctx: dh.OrchestrationContext, _: object):
        yield ctx.call_activity("Reserve")
        if ctx.is_patched("notify"):
            yield ctx.call_activity("Notify")
        yield ctx.call_activity("Ship")

    def unconditional(ctx: dh.OrchestrationContext, _: object):
        yield ctx.call_activity("Reserve")
        yield ctx.call_activity("Notify")
        yield ctx.call_activity("Ship")

    assert check_history(_app_with(by_version), _in_flight_history()).problem is None
    assert check_history(_app_with(by_patch), _in_flight_history()).problem is None
    assert check_history(_app_with(unconditional), _in_flight_history()).nondeterministic


def test_replay_check_reports_code_that_raises_and_missing_code() -> None:
    def raises(ctx: dh.OrchestrationContext, order: dict):
        yield ctx.call_activity("Reserve")
        raise KeyError("new_field")

    verdict = check_history(_app_with(raises), _in_flight_history())
    assert not verdict.nondeterministic and verdict.problem is not None and "KeyError" in verdict.problem
    versioned = dh.App()
    versioned.add_orchestrator(raises, name="Order", version="2.0")
    missing = check_history(versioned, _in_flight_history("1.0")).problem
    assert missing is not None and "no code for version '1.0'" in missing
    assert check_history(versioned, []).problem is None  # nothing started: nothing to replay
