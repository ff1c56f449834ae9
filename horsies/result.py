"""`Result` = `Ok[T] | Err[E]`: the value returned by library operations that can fail."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, ParamSpec, TypeAlias, TypeVar, Union

if TYPE_CHECKING:
    from typing_extensions import TypeIs
else:  # run time: only the name is needed (typing has TypeIs from 3.13)
    try:
        from typing import TypeIs
    except ImportError:
        from typing import TypeGuard as TypeIs

__all__ = [
    "Ok",
    "Err",
    "Result",
    "OkErr",
    "UnwrapError",
    "is_ok",
    "is_err",
    "as_result",
    "as_async_result",
    "do",
    "do_async",
]

T = TypeVar("T", covariant=True)
E = TypeVar("E", covariant=True)
U = TypeVar("U")
F = TypeVar("F")
R = TypeVar("R")
TBE = TypeVar("TBE", bound=BaseException)
P = ParamSpec("P")


class Ok(Generic[T]):
    """A success holding `ok_value`."""

    __slots__ = ("_value",)
    __match_args__ = ("ok_value",)

    _value: T

    def __init__(self, value: T) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Ok is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Ok is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ok, (self._value,))

    def __repr__(self) -> str:
        return f"Ok({self._value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ok) and bool(self._value == other._value)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((True, self._value))

    def __iter__(self) -> Iterator[T]:
        yield self._value

    def is_ok(self) -> bool:
        return True

    def is_err(self) -> bool:
        return False

    def ok(self) -> T:
        return self._value

    def err(self) -> None:
        return None

    @property
    def ok_value(self) -> T:
        return self._value

    @property
    def err_value(self) -> NoReturn:
        raise UnwrapError(self, "Called `Result.err_value` on an `Ok` value")

    def unwrap(self) -> T:
        return self._value

    def unwrap_err(self) -> NoReturn:
        raise UnwrapError(self, "Called `Result.unwrap_err()` on an `Ok` value")

    def expect(self, _message: str) -> T:
        return self._value

    def expect_err(self, message: str) -> NoReturn:
        raise UnwrapError(self, message)

    def unwrap_or(self, _default: object) -> T:
        return self._value

    def unwrap_or_else(self, _op: object) -> T:
        return self._value

    def unwrap_or_raise(self, _e: object) -> T:
        return self._value

    def map(self, op: Callable[[T], U]) -> Ok[U]:
        return Ok(op(self._value))

    async def map_async(self, op: Callable[[T], Awaitable[U]]) -> Ok[U]:
        return Ok(await op(self._value))

    def map_or(self, _default: object, op: Callable[[T], U]) -> U:
        return op(self._value)

    def map_or_else(self, _default_op: object, op: Callable[[T], U]) -> U:
        return op(self._value)

    def map_err(self, _op: object) -> Ok[T]:
        return self

    def and_then(self, op: Callable[[T], Result[U, F]]) -> Result[U, F]:
        return op(self._value)

    async def and_then_async(
        self, op: Callable[[T], Awaitable[Result[U, F]]]
    ) -> Result[U, F]:
        return await op(self._value)

    def or_else(self, _op: object) -> Ok[T]:
        return self

    def inspect(self, op: Callable[[T], Any]) -> Ok[T]:
        op(self._value)
        return self

    def inspect_err(self, _op: object) -> Ok[T]:
        return self


class Err(Generic[E]):
    """A failure holding `err_value`."""

    __slots__ = ("_value",)
    __match_args__ = ("err_value",)

    _value: E

    def __init__(self, value: E) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Err is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Err is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Err, (self._value,))

    def __repr__(self) -> str:
        return f"Err({self._value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and bool(self._value == other._value)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((False, self._value))

    def __iter__(self) -> Iterator[NoReturn]:
        # Raise when the iterator is advanced, not when it is created, so that
        # the first `for` of a generator expression passed to `do` is lazy.
        def _short_circuit() -> Iterator[NoReturn]:
            raise _DoShortCircuit(self)
            yield  # pragma: no cover - makes this a generator

        return _short_circuit()

    def is_ok(self) -> bool:
        return False

    def is_err(self) -> bool:
        return True

    def ok(self) -> None:
        return None

    def err(self) -> E:
        return self._value

    @property
    def ok_value(self) -> NoReturn:
        raise self._unwrap_error("Called `Result.ok_value` on an `Err` value")

    @property
    def err_value(self) -> E:
        return self._value

    def _unwrap_error(self, prefix: str) -> UnwrapError:
        error = UnwrapError(self, f"{prefix}: {self._value!r}")
        if isinstance(self._value, BaseException):
            error.__cause__ = self._value
        return error

    def unwrap(self) -> NoReturn:
        raise self._unwrap_error("Called `Result.unwrap()` on an `Err` value")

    def unwrap_err(self) -> E:
        return self._value

    def expect(self, message: str) -> NoReturn:
        raise self._unwrap_error(message)

    def expect_err(self, _message: str) -> E:
        return self._value

    def unwrap_or(self, default: U) -> U:
        return default

    def unwrap_or_else(self, op: Callable[[E], U]) -> U:
        return op(self._value)

    def unwrap_or_raise(self, e: Callable[[E], BaseException]) -> NoReturn:
        raise e(self._value)

    def map(self, _op: object) -> Err[E]:
        return self

    async def map_async(self, _op: object) -> Err[E]:
        return self

    def map_or(self, default: U, _op: object) -> U:
        return default

    def map_or_else(self, default_op: Callable[[], U], _op: object) -> U:
        return default_op()

    def map_err(self, op: Callable[[E], F]) -> Err[F]:
        return Err(op(self._value))

    def and_then(self, _op: object) -> Err[E]:
        return self

    async def and_then_async(self, _op: object) -> Err[E]:
        return self

    def or_else(self, op: Callable[[E], Result[U, F]]) -> Result[U, F]:
        return op(self._value)

    def inspect(self, _op: object) -> Err[E]:
        return self

    def inspect_err(self, op: Callable[[E], Any]) -> Err[E]:
        op(self._value)
        return self


Result: TypeAlias = Union[Ok[T], Err[E]]
"""`Ok[T] | Err[E]`."""

OkErr: Final = (Ok, Err)
"""For `isinstance(x, OkErr)` checks."""


class UnwrapError(ValueError):
    """Raised by an `Ok` / `Err` accessor used on the wrong variant."""

    _result: Ok[Any] | Err[Any]

    def __init__(self, result: Ok[Any] | Err[Any], message: str) -> None:
        self._result = result
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnwrapError, (self._result, str(self)))

    @property
    def result(self) -> Ok[Any] | Err[Any]:
        """The `Ok` / `Err` the error was raised from."""
        return self._result


def is_ok(result: Result[U, F]) -> TypeIs[Ok[U]]:
    """`result.is_ok()`; narrows a `Result` to `Ok`. Also accepts a `TaskResult`."""
    return bool(result.is_ok())


def is_err(result: Result[U, F]) -> TypeIs[Err[F]]:
    """`result.is_err()`; narrows a `Result` to `Err`. Also accepts a `TaskResult`."""
    return bool(result.is_err())


def _check_exception_types(exceptions: tuple[Any, ...]) -> tuple[type[BaseException], ...]:
    if not exceptions or not all(
        isinstance(exc, type) and issubclass(exc, BaseException) for exc in exceptions
    ):
        raise TypeError("as_result() requires one or more exception types")
    return exceptions


def as_result(
    *exceptions: type[TBE],
) -> Callable[[Callable[P, R]], Callable[P, Result[R, TBE]]]:
    """Decorate a function so that it returns `Ok(value)`, or `Err(exc)` for the listed exceptions."""
    caught = _check_exception_types(exceptions)

    def decorator(fn: Callable[P, R]) -> Callable[P, Result[R, TBE]]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Result[R, TBE]:
            try:
                return Ok(fn(*args, **kwargs))
            except caught as exc:
                return Err(exc)  # type: ignore[arg-type]

        return wrapper

    return decorator


def as_async_result(
    *exceptions: type[TBE],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[Result[R, TBE]]]]:
    """`as_result` for coroutine functions."""
    caught = _check_exception_types(exceptions)

    def decorator(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Result[R, TBE]]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Result[R, TBE]:
            try:
                return Ok(await fn(*args, **kwargs))
            except caught as exc:
                return Err(exc)  # type: ignore[arg-type]

        return wrapper

    return decorator


class _DoShortCircuit(Exception):
    """Carries the `Err` that stopped a do-notation generator."""

    def __init__(self, err: Err[Any]) -> None:
        super().__init__(err)
        self.err = err


def do(gen: Generator[Result[U, F], None, None]) -> Result[U, F]:
    """Do-notation: the first `Result` the generator yields, or the `Err` that stopped it.

    >>> do(Ok(x + y) for x in Ok(1) for y in Ok(2))
    Ok(3)
    """
    try:
        return next(gen)
    except _DoShortCircuit as stop:
        return stop.err
    except TypeError as exc:
        if inspect.isasyncgen(gen):
            raise TypeError("do() got an async generator; use `await do_async(...)`") from exc
        raise


async def do_async(
    gen: AsyncGenerator[Result[U, F], None] | Generator[Result[U, F], None, None],
) -> Result[U, F]:
    """Async do-notation, for generator expressions that `await`."""
    try:
        if inspect.isasyncgen(gen):
            return await gen.__anext__()
        return next(gen)  # type: ignore[arg-type]
    except _DoShortCircuit as stop:
        return stop.err
