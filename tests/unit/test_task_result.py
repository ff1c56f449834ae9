"""TaskResult, TaskError and SubWorkflowError (results-and-errors.md §3, §4)."""

from __future__ import annotations

import pickle
from enum import Enum
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from horsies.codes import (
    BUILTIN_CODE_REGISTRY,
    ContractCode,
    OperationalErrorCode,
    OutcomeCode,
    RetrievalCode,
)
from horsies.task_result import SubWorkflowError, TaskError, TaskResult

# -- TaskResult ---------------------------------------------------------------


def test_success_and_failure() -> None:
    ok: TaskResult[int, TaskError] = TaskResult(ok=3)
    assert ok.is_ok() and not ok.is_err()
    assert ok.ok == 3 and ok.err is None
    assert ok.ok_value == 3 and ok.unwrap() == 3

    error = TaskError(error_code="CARD_DECLINED")
    err: TaskResult[int, TaskError] = TaskResult(err=error)
    assert err.is_err() and not err.is_ok()
    assert err.err is error and err.ok is None
    assert err.err_value is error and err.unwrap_err() is error


def test_none_is_a_valid_success() -> None:
    result: TaskResult[None, TaskError] = TaskResult(ok=None)
    assert result.is_ok()
    assert result.ok is None
    assert result.ok_value is None


def test_both_raises() -> None:
    with pytest.raises(ValueError) as info:
        TaskResult(ok=1, err=TaskError())
    assert str(info.value) == "TaskResult cannot have both ok and err"


def test_both_raises_even_with_none_values() -> None:
    with pytest.raises(ValueError, match="^TaskResult cannot have both ok and err$"):
        TaskResult(ok=None, err=None)


def test_neither_raises() -> None:
    with pytest.raises(ValueError) as info:
        TaskResult()
    assert str(info.value) == "TaskResult must have exactly one of ok / err"


def test_positional_raises_type_error() -> None:
    with pytest.raises(TypeError):
        TaskResult(1)  # type: ignore[call-overload]


def test_wrong_variant_accessors() -> None:
    ok: TaskResult[int, TaskError] = TaskResult(ok=1)
    err: TaskResult[int, TaskError] = TaskResult(err=TaskError())
    for call in (lambda: err.ok_value, err.unwrap):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == "Result is not ok - check is_ok() first"
    for call in (lambda: ok.err_value, ok.unwrap_err):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == "Result is not error - check is_err() first"


def test_immutable() -> None:
    result = TaskResult(ok=1)
    with pytest.raises(AttributeError):
        result.ok = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result._value = 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        result.anything = 2  # type: ignore[attr-defined]
    assert result.ok == 1


def test_generic_at_runtime() -> None:
    alias = TaskResult[int, TaskError]
    assert alias.__origin__ is TaskResult  # type: ignore[attr-defined]
    assert alias.__args__ == (int, TaskError)  # type: ignore[attr-defined]
    assert alias(ok=1) == TaskResult(ok=1)


def test_equality() -> None:
    assert TaskResult(ok=1) == TaskResult(ok=1)
    assert TaskResult(ok=1) != TaskResult(ok=2)
    assert TaskResult(ok=None) != TaskResult(err=TaskError())
    e = TaskError(error_code="X", message="m")
    assert TaskResult(err=e) == TaskResult(err=TaskError(error_code="X", message="m"))
    assert TaskResult(err=e) != TaskResult(ok=e)
    assert TaskResult(ok=1) != 1
    assert hash(TaskResult(ok=1)) == hash(TaskResult(ok=1))


def test_repr() -> None:
    assert repr(TaskResult(ok=3)) == "TaskResult(ok=3)"
    assert repr(TaskResult(ok="a")) == "TaskResult(ok='a')"
    assert repr(TaskResult(err=TaskError(error_code="X"))).startswith(
        "TaskResult(err=TaskError(error_code='X'"
    )


def test_pickle_roundtrip() -> None:
    for result in (TaskResult(ok={"a": [1]}), TaskResult(err=TaskError(error_code="X"))):
        assert pickle.loads(pickle.dumps(result)) == result


@given(st.integers() | st.text() | st.none() | st.lists(st.integers()))
def test_ok_property(value: Any) -> None:
    result = TaskResult(ok=value)
    assert result.is_ok() and result.ok == value and result.ok_value == value
    assert result.err is None


# -- TaskError -------------------------------------------------------------------


def test_task_error_defaults() -> None:
    error = TaskError()
    assert error.error_code is None
    assert error.message is None
    assert error.data is None
    assert error.exception is None


def test_task_error_is_frozen_kw_only_struct() -> None:
    assert issubclass(TaskError, msgspec.Struct)
    error = TaskError(error_code="X")
    with pytest.raises(AttributeError):
        error.message = "m"  # type: ignore[misc]
    with pytest.raises(TypeError):
        TaskError("X")  # type: ignore[misc]


@pytest.mark.parametrize("member", list(BUILTIN_CODE_REGISTRY.values()))
def test_builtin_member_kept(member: Any) -> None:
    assert TaskError(error_code=member).error_code is member


@pytest.mark.parametrize("member", list(BUILTIN_CODE_REGISTRY.values()))
def test_reserved_plain_string_refused(member: Any) -> None:
    with pytest.raises(ValueError) as info:
        TaskError(error_code=member.value)
    family = type(member).__name__
    assert str(info.value) == (
        f"'{member.value}' is a reserved built-in error code ({family}.{member.name}). "
        "Pass the enum member directly."
    )


def test_reserved_message_example() -> None:
    with pytest.raises(ValueError) as info:
        TaskError(error_code="BROKER_ERROR")
    assert str(info.value) == (
        "'BROKER_ERROR' is a reserved built-in error code (OperationalErrorCode.BROKER_ERROR). "
        "Pass the enum member directly."
    )
    assert TaskError(error_code=OperationalErrorCode.BROKER_ERROR).error_code == "BROKER_ERROR"


def test_user_str_enum_refused() -> None:
    class MyCode(str, Enum):
        CARD_DECLINED = "CARD_DECLINED"

    with pytest.raises(ValueError, match=r"\.value"):
        TaskError(error_code=MyCode.CARD_DECLINED)
    assert TaskError(error_code=MyCode.CARD_DECLINED.value).error_code == "CARD_DECLINED"


def test_user_non_str_enum_refused() -> None:
    class Color(Enum):
        RED = 1

    with pytest.raises(ValueError):
        TaskError(error_code=Color.RED)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("UNHANDLED_EXCEPTION", OperationalErrorCode.UNHANDLED_EXCEPTION),
        ("RETURN_TYPE_MISMATCH", ContractCode.RETURN_TYPE_MISMATCH),
        ("WAIT_TIMEOUT", RetrievalCode.WAIT_TIMEOUT),
        ("TASK_EXPIRED", OutcomeCode.TASK_EXPIRED),
    ],
)
def test_stored_form_becomes_member(name: str, member: Any) -> None:
    error = TaskError(error_code={"__builtin_task_code__": name})  # type: ignore[arg-type]
    assert error.error_code is member


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"code": "WAIT_TIMEOUT"},
        {"__builtin_task_code__": 3},
        {"__builtin_task_code__": None},
        {"__builtin_task_code__": "NOT_A_BUILTIN"},
        {"__builtin_task_code__": "wait_timeout"},
    ],
)
def test_bad_stored_form_refused(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TaskError(error_code=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["CARD_DECLINED", "lower case is fine here", "", "TimeoutError"])
def test_user_codes_kept_as_is(value: str) -> None:
    error = TaskError(error_code=value)
    assert error.error_code == value
    assert type(error.error_code) is str


@pytest.mark.parametrize("value", [1, 1.5, b"X", ["X"], ("X",), object()])
def test_other_types_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        TaskError(error_code=value)


def test_equality_field_by_field() -> None:
    assert TaskError(error_code="X", message="m", data={"a": 1}) == TaskError(
        error_code="X", message="m", data={"a": 1}
    )
    assert TaskError(error_code="X") != TaskError(error_code="Y")
    assert TaskError(data=1) != TaskError(data=2)


def test_exception_compares_by_identity() -> None:
    exc = ValueError("x")
    assert TaskError(exception=exc) == TaskError(exception=exc)
    assert TaskError(exception=exc) != TaskError(exception=ValueError("x"))
    stored = {"type": "ValueError", "message": "x", "traceback": "tb"}
    assert TaskError(exception=stored) == TaskError(exception=dict(stored))


def test_domain_error_example() -> None:
    result = TaskResult(
        err=TaskError(
            error_code="CARD_DECLINED",
            message="issuer refused the charge",
            data={"order_id": 7, "decline_code": "insufficient_funds"},
        )
    )
    assert result.err_value.error_code == "CARD_DECLINED"


def test_convert_from_stored_dict_validates() -> None:
    error = msgspec.convert(
        {"error_code": "MY_CODE", "message": "m"}, TaskError
    )
    assert error.error_code == "MY_CODE"
    with pytest.raises((ValueError, msgspec.ValidationError)):
        msgspec.convert({"error_code": "BROKER_ERROR"}, TaskError)


# -- SubWorkflowError -----------------------------------------------------------


def test_sub_workflow_error() -> None:
    error = SubWorkflowError(
        error_code=OutcomeCode.SUBWORKFLOW_FAILED,
        message="child failed",
        sub_workflow_id="wf-1",
        sub_workflow_summary={"status": "FAILED"},
    )
    assert isinstance(error, TaskError)
    assert error.sub_workflow_id == "wf-1"
    assert error.sub_workflow_summary == {"status": "FAILED"}
    with pytest.raises(TypeError):
        SubWorkflowError(error_code="X")  # type: ignore[call-arg]


def test_sub_workflow_error_validates_code() -> None:
    with pytest.raises(ValueError):
        SubWorkflowError(
            error_code="SUBWORKFLOW_FAILED", sub_workflow_id="w", sub_workflow_summary=None
        )


def test_match_distinguishes_sub_workflow_error() -> None:
    def kind(result: TaskResult[Any, TaskError]) -> str:
        match result.err:
            case SubWorkflowError() as e:
                return f"sub:{e.sub_workflow_id}"
            case TaskError() as e:
                return f"task:{e.error_code}"
            case _:
                return "ok"

    sub = SubWorkflowError(sub_workflow_id="w1", sub_workflow_summary=None)
    assert kind(TaskResult(err=sub)) == "sub:w1"
    assert kind(TaskResult(err=TaskError(error_code="X"))) == "task:X"
    assert kind(TaskResult(ok=1)) == "ok"


def test_convert_stored_form() -> None:
    error = msgspec.convert(
        {"error_code": {"__builtin_task_code__": "WORKER_CRASHED"}, "message": "died"}, TaskError
    )
    assert error.error_code is OperationalErrorCode.WORKER_CRASHED
    decoded = msgspec.json.decode(
        msgspec.json.encode(TaskError(error_code="MINE", data={"a": 1})), type=TaskError
    )
    assert decoded == TaskError(error_code="MINE", data={"a": 1})
