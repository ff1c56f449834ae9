"""The workflow outcome (workflows.md §9.1, §9.2, §16.7): a pure function of node statuses.

Kept apart from the engine so the test oracle and the engine share one rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from horsies.states import WorkflowTaskStatus

Outcome = tuple[Literal["COMPLETED", "FAILED"], int | None, bool]


def evaluate_outcome(
    statuses: Sequence[WorkflowTaskStatus],
    has_error: bool,
    success_cases: Sequence[Sequence[int]] | None,
) -> Outcome:
    """(status, index of the node whose error becomes the workflow's, case-not-met flag)."""
    if success_cases is None:
        return _default(statuses, has_error)
    return _with_policy(statuses, success_cases)


def _default(statuses: Sequence[WorkflowTaskStatus], has_error: bool) -> Outcome:
    first_failed = _lowest_failed(statuses, range(len(statuses)))
    if first_failed is None and not has_error:
        return "COMPLETED", None, False
    return "FAILED", first_failed, False


def _with_policy(statuses: Sequence[WorkflowTaskStatus],
                 success_cases: Sequence[Sequence[int]]) -> Outcome:
    for required in success_cases:
        if all(statuses[i] == WorkflowTaskStatus.COMPLETED for i in required):
            return "COMPLETED", None, False
    every_required = sorted({i for required in success_cases for i in required})
    first_failed = _lowest_failed(statuses, every_required)
    return "FAILED", first_failed, first_failed is None


def _lowest_failed(statuses: Sequence[WorkflowTaskStatus], indices: Sequence[int]) -> int | None:
    for index in indices:
        if statuses[index] == WorkflowTaskStatus.FAILED:
            return index
    return None
