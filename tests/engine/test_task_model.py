"""The task types and combinators of durablehub.task, on their own."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

import durablehub.errors
import durablehub.task as dt
from durablehub.models import FailureDetails
from durablehub.task import CompletableTask, TaskFailedError, when_all, when_any


def failure(message: str) -> TaskFailedError:
    return TaskFailedError(message, FailureDetails(message=message, error_type="builtins.ValueError"))


def test_a_task_reports_its_state() -> None:
    task: CompletableTask[int] = CompletableTask()
    assert not task.is_complete and not task.is_failed
    with pytest.raises(ValueError, match="has not completed"):
        task.get_result()
    with pytest.raises(ValueError, match="has not failed"):
        task.get_exception()
    task.complete(3)
    assert task.is_complete and task.get_result() == 3 and task.result == 3
    with pytest.raises(ValueError, match="already completed"):
        task.complete(4)


def test_a_failed_task_raises_its_error() -> None:
    task: CompletableTask[int] = CompletableTask()
    error = failure("bad")
    task.fail(error)
    assert task.is_failed and task.get_exception() is error
    with pytest.raises(TaskFailedError, match="bad"):
        task.get_result()


def test_when_all_waits_for_every_child() -> None:
    a: CompletableTask[int] = CompletableTask()
    b: CompletableTask[int] = CompletableTask()
    both = when_all([a, b])
    b.complete(2)
    assert not both.is_complete
    a.complete(1)
    assert both.get_result() == [1, 2]
    assert both.get_tasks() == [a, b]


def test_when_all_fails_with_the_first_failure_after_all_children() -> None:
    a: CompletableTask[int] = CompletableTask()
    b: CompletableTask[int] = CompletableTask()
    c: CompletableTask[int] = CompletableTask()
    all_of = when_all([a, b, c])
    c.fail(failure("c"))
    a.fail(failure("a"))
    assert not all_of.is_complete and not all_of.is_failed
    b.complete(1)
    assert all_of.is_failed and str(all_of.get_exception()) == "c"


def test_when_all_counts_children_completed_before_it_was_made() -> None:
    done: CompletableTask[int] = CompletableTask()
    done.complete(1)
    pending: CompletableTask[int] = CompletableTask()
    both = when_all([done, pending])
    pending.complete(2)
    assert both.get_result() == [1, 2]


def test_when_any_returns_the_first_finished_task_even_a_failed_one() -> None:
    a: CompletableTask[int] = CompletableTask()
    b: CompletableTask[int] = CompletableTask()
    first = when_any([a, b])
    b.fail(failure("b"))
    a.complete(1)
    assert first.get_result() is b


def test_combinators_nest_and_share_children() -> None:
    a: CompletableTask[int] = CompletableTask()
    b: CompletableTask[int] = CompletableTask()
    any_of = when_any([a, b])
    children: list[dt.Task[Any]] = [a, when_any([b])]
    all_of = when_all(children)
    a.complete(1)
    assert any_of.get_result() is a and not all_of.is_complete
    b.complete(2)
    assert all_of.get_result() == [1, b]


def test_combinators_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        when_any([])
    with pytest.raises(TypeError, match="expected tasks"):
        when_all([1])  # type: ignore[arg-type]


def test_timer_and_retryable_tasks_expose_their_settings() -> None:
    timer = dt.TimerTask(datetime(2024, 1, 1))
    assert timer.fire_at == datetime(2024, 1, 1)
    policy = dt.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)
    retryable: dt.RetryableTask[int] = dt.RetryableTask(policy, result_type=int)
    assert retryable.retry_policy is policy and retryable.result_type is int


def test_activity_context_is_a_frozen_value() -> None:
    ctx = dt.ActivityContext(orchestration_id="o", task_id=3, task_name="Charge")
    assert (ctx.orchestration_id, ctx.task_id, ctx.task_name) == ("o", 3, "Charge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.task_id = 4  # type: ignore[misc]


def test_errors_are_reexported_not_redefined() -> None:
    assert dt.TaskFailedError is durablehub.errors.TaskFailedError
    assert dt.NonDeterminismError is durablehub.errors.NonDeterminismError
    assert set(dt.__all__) <= set(dir(dt))
