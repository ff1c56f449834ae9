"""Running a task function (tasks.md §2, §2.1; results-and-errors.md §7)."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import decimal
import typing
import uuid
import warnings
from enum import Enum
from typing import Annotated, Any, Literal, NewType, Optional, TypedDict, TypeVar, Union

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from horsies.codes import ContractCode, OperationalErrorCode, RetrievalCode
from horsies.task_result import SubWorkflowError, TaskError, TaskResult
from horsies.tasks.wrapper import (
    UNCHECKED,
    TaskCallSpec,
    conforms,
    parse_return_annotation,
    resolve_exception_code,
    run_task_function,
)


def spec(**overrides: Any) -> TaskCallSpec:
    values: dict[str, Any] = {"task_name": "the_task", "function_name": "the_function"}
    values.update(overrides)
    return TaskCallSpec(**values)


def run(fn: Any, *args: Any, spec_: TaskCallSpec | None = None, **kwargs: Any) -> TaskResult[Any, TaskError]:
    return run_task_function(fn, args, kwargs, spec=spec_ or spec())


class Boom(Exception):
    pass


class SubBoom(Boom):
    pass


class CardError(TaskError, frozen=True, kw_only=True):
    pass


# -- what the function returned ------------------------------------------------------


def test_conforming_ok_returned_unchanged() -> None:
    result = TaskResult(ok=[1, 2])
    assert run(lambda: result, spec_=spec(ok_type=list[int])) is result


def test_ok_none_for_none_type() -> None:
    result = TaskResult(ok=None)
    assert run(lambda: result, spec_=spec(ok_type=type(None))) is result


def test_err_instance_returned_unchanged() -> None:
    result = TaskResult(err=TaskError(error_code="CARD_DECLINED"))
    assert run(lambda: result, spec_=spec(ok_type=int)) is result


def test_err_subclass_instance_accepted() -> None:
    result = TaskResult(err=SubWorkflowError(sub_workflow_id="w", sub_workflow_summary=None))
    assert run(lambda: result, spec_=spec(ok_type=int, err_type=TaskError)) is result


def test_ok_mismatch() -> None:
    out = run(lambda: TaskResult(ok="12"), spec_=spec(ok_type=int))
    error = out.err_value
    assert error.error_code is ContractCode.RETURN_TYPE_MISMATCH
    assert error.data == {
        "variant": "ok",
        "expected_type": str(int),
        "actual_type": "str",
        "actual_value": "'12'",
    }
    assert "the_function" in (error.message or "")
    assert "ok" in (error.message or "")
    assert str(int) in (error.message or "")


def test_mismatch_value_repr_cut_to_200() -> None:
    out = run(lambda: TaskResult(ok="x" * 1000), spec_=spec(ok_type=int))
    assert out.err_value.data["actual_value"] == repr("x" * 1000)[:200]
    assert len(out.err_value.data["actual_value"]) == 200


def test_mismatch_with_broken_repr() -> None:
    class Ugly:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    out = run(lambda: TaskResult(ok=Ugly()), spec_=spec(ok_type=int))
    assert out.err_value.error_code is ContractCode.RETURN_TYPE_MISMATCH
    assert out.err_value.data["actual_type"] == "Ugly"


def test_err_mismatch() -> None:
    out = run(lambda: TaskResult(err=TaskError(error_code="X")), spec_=spec(ok_type=int, err_type=CardError))
    error = out.err_value
    assert error.error_code is ContractCode.RETURN_TYPE_MISMATCH
    assert error.data["variant"] == "err"
    assert error.data["expected_type"] == str(CardError)
    assert error.data["actual_type"] == "TaskError"
    assert "err" in (error.message or "")


def test_err_none_is_mismatch() -> None:
    out = run(lambda: TaskResult(err=None), spec_=spec(ok_type=int))
    assert out.err_value.error_code is ContractCode.RETURN_TYPE_MISMATCH
    assert out.err_value.data["actual_type"] == "NoneType"


def test_unchecked_skips_conformance() -> None:
    result = TaskResult(ok="anything")
    assert run(lambda: result, spec_=spec(ok_type=UNCHECKED)) is result
    err_result = TaskResult(err="not an error")
    assert run(lambda: err_result, spec_=spec(err_type=UNCHECKED)) is err_result


def test_returned_none() -> None:
    out = run(lambda: None)
    error = out.err_value
    assert error.error_code is OperationalErrorCode.TASK_EXCEPTION
    assert error.message == "Task the_function returned None instead of TaskResult"
    assert error.data == {"task_name": "the_task"}


@pytest.mark.parametrize(
    ("value", "type_name"), [(5, "int"), ("s", "str"), ({"ok": 1}, "dict"), (TaskError(), "TaskError")]
)
def test_returned_other(value: Any, type_name: str) -> None:
    error = run(lambda: value).err_value
    assert error.error_code is OperationalErrorCode.TASK_EXCEPTION
    assert error.message == f"Task the_function returned {type_name} instead of TaskResult"
    assert error.data == {"task_name": "the_task", "returned_type": type_name}


def test_returned_coroutine_is_closed() -> None:
    async def body() -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = run(body).err_value
    assert error.data == {"task_name": "the_task", "returned_type": "coroutine"}


def test_arguments_are_passed() -> None:
    def add(a: int, b: int = 0, *, c: int = 0) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b + c)

    assert run(add, 1, 2, c=3, spec_=spec(ok_type=int)).ok_value == 6


# -- exceptions --------------------------------------------------------------------------


def raiser(exc: BaseException) -> Any:
    def fn() -> Any:
        raise exc

    return fn


def test_unhandled_exception_default() -> None:
    exc = ValueError("bad input")
    error = run(raiser(exc)).err_value
    assert error.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert error.message == "Unhandled exception in task the_function: ValueError: bad input"
    assert error.data == {"exception_type": "ValueError"}
    assert error.exception is exc


def test_wrong_arguments_type_error_is_mapped() -> None:
    def one(a: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a)

    error = run(one, 1, 2, spec_=spec(app_mapper={TypeError: "BAD_ARGS"})).err_value
    assert error.error_code == "BAD_ARGS"
    assert error.data == {"exception_type": "TypeError"}


def test_system_exit_is_captured() -> None:
    error = run(raiser(SystemExit(3))).err_value
    assert error.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert error.data == {"exception_type": "SystemExit"}


def test_keyboard_interrupt_propagates() -> None:
    with pytest.raises(KeyboardInterrupt):
        run(raiser(KeyboardInterrupt()), spec_=spec(task_mapper={KeyboardInterrupt: "X"}))


def test_task_mapper_first() -> None:
    s = spec(
        task_mapper={Boom: "TASK_BOOM"},
        app_mapper={Boom: "APP_BOOM"},
        task_default_code="TASK_DEFAULT",
    )
    error = run(raiser(Boom("x")), spec_=s).err_value
    assert error.error_code == "TASK_BOOM"
    assert type(error.error_code) is str
    assert error.message == "Unhandled exception in task the_function: Boom: x"


def test_app_mapper_second() -> None:
    s = spec(task_mapper={KeyError: "K"}, app_mapper={Boom: "APP_BOOM"}, task_default_code="D")
    assert run(raiser(Boom()), spec_=s).err_value.error_code == "APP_BOOM"


def test_task_default_third() -> None:
    s = spec(task_mapper={KeyError: "K"}, app_mapper={KeyError: "K2"}, task_default_code="TASK_DEFAULT",
             app_default_code="APP_DEFAULT")
    assert run(raiser(Boom()), spec_=s).err_value.error_code == "TASK_DEFAULT"


def test_app_default_last() -> None:
    s = spec(app_default_code="APP_DEFAULT")
    assert run(raiser(Boom()), spec_=s).err_value.error_code == "APP_DEFAULT"


def test_app_default_none_falls_back_to_unhandled() -> None:
    s = spec(app_default_code=None)
    assert run(raiser(Boom()), spec_=s).err_value.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION


def test_exact_class_only() -> None:
    s = spec(task_mapper={Boom: "TASK_BOOM"}, app_mapper={Exception: "APP_EXC"})
    error = run(raiser(SubBoom()), spec_=s).err_value
    assert error.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert error.data == {"exception_type": "SubBoom"}


def test_non_string_mapper_value_ignored() -> None:
    s = spec(task_mapper={Boom: 42}, app_mapper={Boom: "APP_BOOM"})  # type: ignore[dict-item]
    assert run(raiser(Boom()), spec_=s).err_value.error_code == "APP_BOOM"


def test_builtin_string_becomes_member() -> None:
    s = spec(task_mapper={Boom: "BROKER_ERROR"}, task_default_code="WAIT_TIMEOUT")
    assert run(raiser(Boom()), spec_=s).err_value.error_code is OperationalErrorCode.BROKER_ERROR
    assert run(raiser(KeyError()), spec_=s).err_value.error_code is RetrievalCode.WAIT_TIMEOUT


def test_default_unhandled_string_becomes_member() -> None:
    s = spec(app_default_code="UNHANDLED_EXCEPTION")
    code = run(raiser(Boom()), spec_=s).err_value.error_code
    assert code is OperationalErrorCode.UNHANDLED_EXCEPTION


def test_user_str_enum_mapper_value_becomes_plain_string() -> None:
    class Code(str, Enum):
        UPSTREAM_DOWN = "UPSTREAM_DOWN"

    s = spec(task_mapper={Boom: Code.UPSTREAM_DOWN})
    code = run(raiser(Boom()), spec_=s).err_value.error_code
    assert code == "UPSTREAM_DOWN" and type(code) is str


def test_mapper_mapping_proxy() -> None:
    from types import MappingProxyType

    s = spec(task_mapper=MappingProxyType({Boom: "MAPPED"}))
    assert run(raiser(Boom()), spec_=s).err_value.error_code == "MAPPED"


def test_resolve_exception_code_directly() -> None:
    assert resolve_exception_code(Boom()) is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert resolve_exception_code(Boom(), app_mapper={Boom: "X"}) == "X"


def test_workflow_ctx_missing_id() -> None:
    class WorkflowContextMissingIdError(Exception):
        pass

    exc = WorkflowContextMissingIdError("node has no id")
    s = spec(task_mapper={WorkflowContextMissingIdError: "MAPPED"}, task_default_code="D")
    error = run(raiser(exc), spec_=s).err_value
    assert error.error_code is ContractCode.WORKFLOW_CTX_MISSING_ID
    assert error.message == "node has no id"
    assert error.exception is exc


def test_exception_with_broken_str() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("nope")

    error = run(raiser(Weird())).err_value
    assert error.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert error.data == {"exception_type": "Weird"}


def test_spec_is_frozen() -> None:
    s = spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.task_name = "other"  # type: ignore[misc]
    assert s.ok_type is UNCHECKED and s.err_type is TaskError
    assert s.app_default_code == "UNHANDLED_EXCEPTION"


@given(st.integers() | st.text() | st.none() | st.booleans() | st.floats(allow_nan=False))
def test_never_raises(value: Any) -> None:
    for returned in (value, TaskResult(ok=value), TaskResult(err=value)):
        out = run(lambda r=returned: r, spec_=spec(ok_type=int))
        assert isinstance(out, TaskResult)


# -- conformance ------------------------------------------------------------------------


class Color(Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int


class Item(msgspec.Struct):
    name: str


class Movie(TypedDict):
    title: str
    year: int


class PartialMovie(TypedDict, total=False):
    title: str


UserId = NewType("UserId", int)
TBound = TypeVar("TBound", bound=str)
TFree = TypeVar("TFree")


class Greeter(typing.Protocol):
    def greet(self) -> str: ...


G = TypeVar("G")


class Box(typing.Generic[G]):
    def __init__(self, item: G) -> None:
        self.item = item


CONFORMING: list[tuple[Any, Any]] = [
    (1, Any), (object(), object), (None, None), (None, type(None)),
    (True, bool), (1, int), (1, float), (1.5, float), ("s", str), (b"b", bytes),
    (Color.RED, Color), (Point(1), Point), (Item("a"), Item),
    (datetime.datetime.now(), datetime.datetime), (datetime.date.today(), datetime.date),
    (datetime.time(), datetime.time), (datetime.timedelta(1), datetime.timedelta),
    (uuid.uuid4(), uuid.UUID), (decimal.Decimal("1.5"), decimal.Decimal),
    ([1, 2], list[int]), ([], list[int]), ([1], typing.List[int]),
    ([1], cabc.Sequence[int]), ((1, 2), cabc.Sequence[int]), ([1], cabc.MutableSequence[int]),
    ((1, 2), tuple[int, ...]), ([1, 2], tuple[int, ...]), ((1, "a"), tuple[int, str]),
    ([1, "a"], tuple[int, str]), ((), tuple[()]), ((1,), typing.Tuple),
    ({1}, set[int]), (frozenset({1}), frozenset[int]),
    ({"a": 1}, dict[str, int]), ({"a": 1}, cabc.Mapping[str, int]),
    ({"a": [1]}, dict[str, list[int]]), ({"a": 1}, typing.Dict[str, int]),
    ([1], list), ({}, dict), ((), tuple), (set(), set),
    (1, int | str), ("a", Union[int, str]), (None, Optional[int]), (3, Optional[int]),
    ("a", Literal["a", "b"]), (1, Literal[1]), (Color.RED, Literal[Color.RED]),
    (1, Annotated[int, "meta"]), (UserId(5), UserId), (5, UserId),
    ({"title": "x", "year": 1}, Movie), ({}, PartialMovie),
    ("s", TBound), (object(), TFree),
    (5, typing.Callable[[int], int]), (5, cabc.Callable), (5, Greeter), ("x", "SomeForwardRef"),
    (Box(1), Box[int]), (int, type[int]), ([1, None], list[Optional[int]]),
]

NON_CONFORMING: list[tuple[Any, Any]] = [
    (1, None), (0, type(None)), (1, bool), (True, int), (True, float), ("1", float),
    ("s", bytes), (1, str), ("red", Color), ({"x": 1}, Point), ({"name": "a"}, Item),
    (datetime.date.today(), datetime.datetime),
    ((1, 2), list[int]), (["a"], list[int]), ([True], list[int]),
    ((1,), cabc.MutableSequence[int]), ("abc", cabc.Sequence[str]),
    ((1, "a"), tuple[int, ...]), ((1,), tuple[int, str]), ((1, 2, 3), tuple[int, int]),
    (("a", 1), tuple[int, str]), ((1,), tuple[()]), ({1}, tuple[int, ...]),
    ([1], set[int]), ({1}, frozenset[int]), (frozenset({1}), set[int]), ({"a"}, set[int]),
    ({1: 1}, dict[str, int]), ({"a": "b"}, dict[str, int]), ([("a", 1)], dict[str, int]),
    ((1,), list), ([], dict),
    (1.5, int | str), (None, int | str), ("x", Optional[int]),
    ("c", Literal["a", "b"]), (True, Literal[1]), (1.0, Literal[1]), ("red", Literal[Color.RED]),
    ("x", Annotated[int, "meta"]), ("5", UserId),
    ({"title": "x"}, Movie), ([], Movie), (5, TBound),
    (Point(1), Box[int]), ([1, "x"], list[Optional[int]]),
]


@pytest.mark.parametrize(("value", "tp"), CONFORMING, ids=[repr(tp) for _, tp in CONFORMING])
def test_conforms(value: Any, tp: Any) -> None:
    assert conforms(value, tp) is True


@pytest.mark.parametrize(("value", "tp"), NON_CONFORMING, ids=[repr(tp) for _, tp in NON_CONFORMING])
def test_does_not_conform(value: Any, tp: Any) -> None:
    assert conforms(value, tp) is False


def test_mapping_accepts_any_mapping_dict_only_dict() -> None:
    from types import MappingProxyType

    proxy = MappingProxyType({"a": 1})
    assert conforms(proxy, cabc.Mapping[str, int])
    assert not conforms(proxy, dict[str, int])


def test_conforms_does_not_convert() -> None:
    value = ["1"]
    assert not conforms(value, list[int])
    assert value == ["1"]


@given(st.lists(st.integers()))
def test_int_lists_conform(values: list[int]) -> None:
    assert conforms(values, list[int])
    assert conforms(tuple(values), tuple[int, ...])
    assert conforms(values, cabc.Sequence[float])
    assert conforms({str(v): v for v in values}, dict[str, int])


@given(st.lists(st.integers(), min_size=1), st.text())
def test_one_bad_item_fails(values: list[int], bad: str) -> None:
    assert not conforms([*values, bad], list[int])


# -- the return annotation ------------------------------------------------------------------


def ok_int() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


def ok_nested() -> TaskResult[dict[str, list[Point]], CardError]:
    return TaskResult(ok={})


def ok_none() -> TaskResult[None, TaskError]:
    return TaskResult(ok=None)


def test_parse_simple() -> None:
    assert parse_return_annotation(ok_int) == (int, TaskError)


def test_parse_nested_and_subclass() -> None:
    assert parse_return_annotation(ok_nested) == (dict[str, list[Point]], CardError)


def test_parse_none() -> None:
    assert parse_return_annotation(ok_none) == (type(None), TaskError)


def test_parse_annotated_wrapper() -> None:
    def fn() -> Annotated[TaskResult[int, TaskError], "doc"]:
        return TaskResult(ok=1)

    assert parse_return_annotation(fn) == (int, TaskError)


def test_parse_real_objects_not_strings() -> None:
    def fn() -> None:
        pass

    fn.__annotations__ = {"return": TaskResult[str, TaskError]}
    assert parse_return_annotation(fn) == (str, TaskError)


def test_parse_local_class_through_closure() -> None:
    class Local:
        pass

    def fn() -> TaskResult[Local, TaskError]:
        _ = Local
        return TaskResult(ok=Local())

    assert parse_return_annotation(fn) == (Local, TaskError)


def test_parse_bound_method() -> None:
    class Holder:
        def method(self) -> TaskResult[int, TaskError]:
            return TaskResult(ok=1)

    assert parse_return_annotation(Holder().method) == (int, TaskError)


def test_parse_missing() -> None:
    def fn():  # type: ignore[no-untyped-def]
        return TaskResult(ok=1)

    with pytest.raises(ValueError, match="no return annotation"):
        parse_return_annotation(fn)


def test_parse_unresolvable() -> None:
    def fn() -> TaskResult[DoesNotExist, TaskError]:  # type: ignore[name-defined]  # noqa: F821
        return TaskResult(ok=1)

    with pytest.raises(ValueError, match="DoesNotExist"):
        parse_return_annotation(fn)


def test_parse_syntax_error() -> None:
    def fn() -> None:
        pass

    fn.__annotations__ = {"return": "TaskResult[int,, TaskError]"}
    with pytest.raises(ValueError):
        parse_return_annotation(fn)


@pytest.mark.parametrize(
    "annotation",
    [
        "int",
        "TaskResult",
        "TaskResult[int, str]",
        "TaskResult[int, ValueError]",
        "TaskResult[int]",
        "TaskResult[int, TaskError, int]",
        "list[TaskResult[int, TaskError]]",
        "Optional[TaskResult[int, TaskError]]",
        "TaskResult[int, Union[TaskError, CardError]]",
    ],
)
def test_parse_invalid(annotation: str) -> None:
    def fn() -> None:
        pass

    fn.__annotations__ = {"return": annotation}
    with pytest.raises((TypeError, ValueError)):
        parse_return_annotation(fn)


def test_parse_invalid_error_type_message() -> None:
    def fn() -> TaskResult[int, str]:
        return TaskResult(ok=1)

    with pytest.raises(TypeError, match="TaskError"):
        parse_return_annotation(fn)
