"""Built-in task codes (results-and-errors.md §5) and the error-code format rule."""

from __future__ import annotations

from enum import Enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horsies.codes import (
    ATTEMPT_CODES,
    BUILTIN_CODE_REGISTRY,
    ContractCode,
    OperationalErrorCode,
    OutcomeCode,
    RetrievalCode,
    builtin_code_family,
    error_code_problem,
)

FAMILIES = (OperationalErrorCode, ContractCode, RetrievalCode, OutcomeCode)

EXPECTED = {
    OperationalErrorCode: {
        "UNHANDLED_EXCEPTION", "TASK_EXCEPTION", "WORKER_CRASHED", "BROKER_ERROR",
        "WORKER_RESOLUTION_ERROR", "WORKER_SERIALIZATION_ERROR",
        "RESULT_DESERIALIZATION_ERROR", "WORKFLOW_ENQUEUE_FAILED",
        "SUBWORKFLOW_LOAD_FAILED", "CONDITION_EVALUATION_ERROR",
    },
    ContractCode: {"RETURN_TYPE_MISMATCH", "PYDANTIC_HYDRATION_ERROR", "WORKFLOW_CTX_MISSING_ID"},
    RetrievalCode: {
        "WAIT_TIMEOUT", "TASK_NOT_FOUND", "WORKFLOW_NOT_FOUND", "RESULT_NOT_AVAILABLE",
        "RESULT_NOT_READY",
    },
    OutcomeCode: {
        "TASK_CANCELLED", "TASK_EXPIRED", "WORKFLOW_PAUSED", "WORKFLOW_FAILED",
        "WORKFLOW_CANCELLED", "UPSTREAM_SKIPPED", "CONDITION_SKIPPED", "CONDITION_NOT_MET",
        "SUBWORKFLOW_FAILED", "WORKFLOW_SUCCESS_CASE_NOT_MET",
    },
}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_members_exact(family: type[Enum]) -> None:
    assert {m.name for m in family} == EXPECTED[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_value_equals_name_and_compares_equal_to_string(family: type[Enum]) -> None:
    assert issubclass(family, str)
    for member in family:
        assert member.value == member.name
        assert member == member.name
        assert str(member) == member.name
        assert f"{member}" == member.name
        assert family(member.name) is member


def test_wait_timeout_equals_string() -> None:
    assert RetrievalCode.WAIT_TIMEOUT == "WAIT_TIMEOUT"


def test_no_value_in_two_families() -> None:
    values = [m.value for family in FAMILIES for m in family]
    assert len(values) == len(set(values))


def test_registry_maps_every_value_to_its_member() -> None:
    total = sum(len(family) for family in FAMILIES)
    assert len(BUILTIN_CODE_REGISTRY) == total
    for family in FAMILIES:
        for member in family:
            assert BUILTIN_CODE_REGISTRY[member.value] is member


def test_registry_reexported_from_errors() -> None:
    from horsies.errors import BUILTIN_CODE_REGISTRY as reexported

    assert reexported is BUILTIN_CODE_REGISTRY


def test_family_text() -> None:
    assert builtin_code_family(OperationalErrorCode.BROKER_ERROR) == "OperationalErrorCode.BROKER_ERROR"
    assert builtin_code_family(RetrievalCode.WAIT_TIMEOUT) == "RetrievalCode.WAIT_TIMEOUT"


def test_attempt_codes() -> None:
    assert ATTEMPT_CODES == {
        OperationalErrorCode.UNHANDLED_EXCEPTION,
        OperationalErrorCode.TASK_EXCEPTION,
        OperationalErrorCode.WORKER_CRASHED,
        OperationalErrorCode.WORKER_RESOLUTION_ERROR,
        OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
        ContractCode.RETURN_TYPE_MISMATCH,
        ContractCode.WORKFLOW_CTX_MISSING_ID,
    }


@pytest.mark.parametrize(
    "value",
    ["A", "TIMEOUT_ERROR", "UPSTREAM_DOWN", "X1", "CARD_DECLINED", "BROKER_ERROR", "A_B_C_9"],
)
def test_valid_codes(value: str) -> None:
    assert error_code_problem(value) is None


def test_builtin_member_is_a_valid_code_string() -> None:
    assert error_code_problem(OperationalErrorCode.BROKER_ERROR) is None


@pytest.mark.parametrize(
    "value", ["", "timeout", "Timeout", "1ABC", "_ABC", "A-B", "A B", "ABC ", "ÄBC", "ABC\n"]
)
def test_invalid_format(value: str) -> None:
    problem = error_code_problem(value)
    assert problem is not None


def test_empty_is_reported_as_empty() -> None:
    assert "empty" in (error_code_problem("") or "")


@pytest.mark.parametrize("value", ["TimeoutError", "ValueError", "MyCustomException", "HTTPError"])
def test_exception_class_names_are_refused_with_explanation(value: str) -> None:
    problem = error_code_problem(value)
    assert problem is not None
    assert "class name" in problem


@pytest.mark.parametrize("value", [None, 3, b"ABC", ["A"]])
def test_non_strings_are_refused(value: object) -> None:
    assert error_code_problem(value) is not None


@given(st.from_regex(r"\A[A-Z][A-Z0-9_]{0,20}\Z"))
def test_regex_codes_are_valid(value: str) -> None:
    assert error_code_problem(value) is None


@given(st.text(max_size=12))
def test_problem_matches_rule(value: str) -> None:
    import re

    valid = bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", value)) and not re.fullmatch(
        r"[A-Z][A-Za-z0-9_]*(Error|Exception)", value
    )
    # `$` in the rule also accepts a trailing newline; fullmatch is the intent.
    assert (error_code_problem(value) is None) == valid
