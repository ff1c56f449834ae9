"""Result / Ok / Err (results-and-errors.md §2)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horsies.result import (
    Err,
    Ok,
    OkErr,
    Result,
    UnwrapError,
    as_async_result,
    as_result,
    do,
    do_async,
    is_err,
    is_ok,
)
from horsies.task_result import TaskError, TaskResult


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- pattern matching and predicates --------------------------------------


def test_match_args() -> None:
    assert Ok.__match_args__ == ("ok_value",)
    assert Err.__match_args__ == ("err_value",)


@pytest.mark.parametrize("result", [Ok(1), Err("boom")])
def test_match_binds(result: Result[int, str]) -> None:
    match result:
        case Ok(value):
            assert result.is_ok() and value == 1
        case Err(error):
            assert result.is_err() and error == "boom"
        case _:  # pragma: no cover
            pytest.fail("no match")


def test_is_ok_is_err() -> None:
    assert Ok(1).is_ok() and not Ok(1).is_err()
    assert Err(1).is_err() and not Err(1).is_ok()
    assert is_ok(Ok(1)) is True and is_err(Ok(1)) is False
    assert is_err(Err(1)) is True and is_ok(Err(1)) is False


def test_is_ok_accepts_task_result() -> None:
    assert is_ok(TaskResult(ok=None)) is True  # type: ignore[arg-type]
    assert is_err(TaskResult(err=TaskError())) is True  # type: ignore[arg-type]


def test_okerr_tuple() -> None:
    assert OkErr == (Ok, Err)
    assert isinstance(Ok(1), OkErr) and isinstance(Err(1), OkErr)
    assert not isinstance(1, OkErr)


# -- the method table ---------------------------------------------------------


def test_ok_err_methods() -> None:
    assert Ok(3).ok() == 3 and Ok(3).err() is None
    assert Err(3).ok() is None and Err(3).err() == 3


def test_ok_value_err_value() -> None:
    assert Ok(3).ok_value == 3
    assert Err(3).err_value == 3
    with pytest.raises(UnwrapError) as info:
        Ok(3).err_value
    assert info.value.result == Ok(3)
    with pytest.raises(UnwrapError) as info2:
        Err(3).ok_value
    assert info2.value.result == Err(3)


def test_unwrap() -> None:
    assert Ok(3).unwrap() == 3
    with pytest.raises(UnwrapError):
        Err("x").unwrap()
    assert Err("x").unwrap_err() == "x"
    with pytest.raises(UnwrapError):
        Ok(1).unwrap_err()


def test_unwrap_chains_exception() -> None:
    cause = KeyError("k")
    with pytest.raises(UnwrapError) as info:
        Err(cause).unwrap()
    assert info.value.__cause__ is cause


def test_unwrap_plain_value_not_chained() -> None:
    with pytest.raises(UnwrapError) as info:
        Err("x").unwrap()
    assert info.value.__cause__ is None


def test_unwrap_error_is_value_error() -> None:
    assert issubclass(UnwrapError, ValueError)
    with pytest.raises(ValueError):
        Err(1).unwrap()


def test_expect() -> None:
    assert Ok(1).expect("nope") == 1
    with pytest.raises(UnwrapError) as info:
        Err("bad").expect("needed a value")
    assert str(info.value) == "needed a value: 'bad'"
    assert info.value.result == Err("bad")


def test_expect_err() -> None:
    assert Err(1).expect_err("nope") == 1
    with pytest.raises(UnwrapError) as info:
        Ok(1).expect_err("wanted an error")
    assert str(info.value) == "wanted an error"
    assert info.value.result == Ok(1)


def test_unwrap_or_variants() -> None:
    assert Ok(1).unwrap_or(5) == 1
    assert Err(1).unwrap_or(5) == 5
    assert Ok(1).unwrap_or_else(lambda e: e * 10) == 1
    assert Err(2).unwrap_or_else(lambda e: e * 10) == 20
    assert Ok(1).unwrap_or_raise(RuntimeError) == 1
    with pytest.raises(RuntimeError, match="^bad$"):
        Err("bad").unwrap_or_raise(RuntimeError)


def test_map_family() -> None:
    assert Ok(2).map(lambda v: v + 1) == Ok(3)
    err: Err[str] = Err("e")
    assert err.map(lambda v: v + 1) is err
    assert Ok(2).map_or(0, lambda v: v * 2) == 4
    assert Err("e").map_or(0, lambda v: v * 2) == 0
    assert Ok(2).map_or_else(lambda: -1, lambda v: v * 2) == 4
    assert Err("e").map_or_else(lambda: -1, lambda v: v * 2) == -1
    ok = Ok(2)
    assert ok.map_err(str.upper) is ok
    assert Err("e").map_err(str.upper) == Err("E")


def test_and_then_or_else() -> None:
    assert Ok(2).and_then(lambda v: Ok(v * 2)) == Ok(4)
    assert Ok(2).and_then(lambda v: Err("no")) == Err("no")
    err = Err("e")
    assert err.and_then(lambda v: Ok(v)) is err
    ok = Ok(1)
    assert ok.or_else(lambda e: Ok(0)) is ok
    assert Err("e").or_else(lambda e: Ok(len(e))) == Ok(1)


def test_inspect() -> None:
    seen: list[Any] = []
    ok = Ok(1)
    assert ok.inspect(seen.append) is ok
    assert ok.inspect_err(seen.append) is ok
    err = Err(2)
    assert err.inspect(seen.append) is err
    assert err.inspect_err(seen.append) is err
    assert seen == [1, 2]


def test_async_map_and_then() -> None:
    async def double(v: int) -> int:
        return v * 2

    async def check(v: int) -> Result[int, str]:
        return Ok(v) if v > 0 else Err("neg")

    assert run(Ok(2).map_async(double)) == Ok(4)
    err = Err("e")
    assert run(err.map_async(double)) is err
    assert run(Ok(2).and_then_async(check)) == Ok(2)
    assert run(Ok(-1).and_then_async(check)) == Err("neg")
    assert run(err.and_then_async(check)) is err


# -- value semantics ----------------------------------------------------------


def test_equality_and_hash() -> None:
    assert Ok(1) == Ok(1) and Ok(1) != Ok(2)
    assert Err(1) == Err(1) and Err(1) != Err(2)
    assert Ok(1) != Err(1) and Err(1) != Ok(1)
    assert Ok(1) != 1
    assert hash(Ok(1)) == hash(Ok(1))
    assert hash(Err("a")) == hash(Err("a"))
    assert len({Ok(1), Ok(1), Err(1)}) == 2


def test_unhashable_content() -> None:
    with pytest.raises(TypeError):
        hash(Ok([1]))


def test_repr() -> None:
    assert repr(Ok(3)) == "Ok(3)"
    assert repr(Err("x")) == "Err('x')"
    assert repr(Ok(None)) == "Ok(None)"


def test_slots_and_immutable() -> None:
    assert Ok.__slots__ == ("_value",) and Err.__slots__ == ("_value",)
    with pytest.raises(AttributeError):
        Ok(1).x = 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        Ok(1)._value = 2  # type: ignore[misc]
    assert not hasattr(Ok(1), "__dict__")


def test_generic_subscription() -> None:
    assert Ok[int](1) == Ok(1)
    assert Result[int, str] is not None


def test_pickle() -> None:
    assert pickle.loads(pickle.dumps(Ok({"a": 1}))) == Ok({"a": 1})
    assert pickle.loads(pickle.dumps(Err("e"))) == Err("e")
    error = pickle.loads(pickle.dumps(UnwrapError(Err(1), "msg")))
    assert isinstance(error, UnwrapError) and error.result == Err(1) and str(error) == "msg"


@given(st.integers() | st.text() | st.none())
def test_equality_property(value: Any) -> None:
    assert Ok(value) == Ok(value)
    assert Err(value) == Err(value)
    assert Ok(value) != Err(value)
    assert Ok(value).unwrap_or(object()) == value


# -- as_result ------------------------------------------------------------------


def test_as_result() -> None:
    @as_result(ValueError, KeyError)
    def parse(text: str) -> int:
        if text == "key":
            raise KeyError(text)
        if text == "boom":
            raise RuntimeError(text)
        return int(text)

    assert parse("3") == Ok(3)
    bad = parse("x")
    assert isinstance(bad, Err) and isinstance(bad.err_value, ValueError)
    assert isinstance(parse("key").err(), KeyError)
    with pytest.raises(RuntimeError):
        parse("boom")
    assert parse.__name__ == "parse"


def test_as_result_requires_exception_types() -> None:
    with pytest.raises(TypeError):
        as_result()
    with pytest.raises(TypeError):
        as_result(int)  # type: ignore[arg-type]


def test_as_async_result() -> None:
    @as_async_result(ValueError)
    async def parse(text: str) -> int:
        await asyncio.sleep(0)
        return int(text)

    assert run(parse("4")) == Ok(4)
    assert isinstance(run(parse("x")).err_value, ValueError)


# -- do notation ------------------------------------------------------------------


def test_do_all_ok() -> None:
    assert do(Ok(x + y) for x in Ok(1) for y in Ok(2)) == Ok(3)


def test_do_short_circuits_on_first_err() -> None:
    calls: list[str] = []

    def second() -> Result[int, str]:
        calls.append("second")
        return Ok(2)

    result = do(Ok(x + y) for x in Err("first") for y in second())
    assert result == Err("first")
    assert calls == []


def test_do_short_circuits_on_later_err() -> None:
    assert do(Ok(x + y) for x in Ok(1) for y in Err("second")) == Err("second")


def test_do_async() -> None:
    async def get(v: Any) -> Result[int, str]:
        await asyncio.sleep(0)
        return Ok(v) if isinstance(v, int) else Err(v)

    async def main(a: Any, b: Any) -> Result[int, str]:
        return await do_async(Ok(x + y) for x in await get(a) for y in await get(b))

    assert run(main(1, 2)) == Ok(3)
    assert run(main("e1", 2)) == Err("e1")
    assert run(main(1, "e2")) == Err("e2")


def test_do_async_accepts_sync_generator() -> None:
    assert run(do_async(Ok(x) for x in Ok(5))) == Ok(5)
