"""What a node's callable accepts, and the type rules of HRS-024/HRS-025 (workflows.md §11.3).

A `TaskNode` is checked against its task function; a `SubWorkflowNode` against
its definition's `build_with(app, **params)`, the `app` parameter excluded.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from horsies.task_result import TaskResult

__all__ = [
    "RESERVED_PARAMS",
    "UNRESOLVED",
    "Params",
    "build_with_params",
    "declared_output_type",
    "is_compatible",
    "node_ok_type",
    "result_param_type",
    "task_params",
    "type_name",
]

RESERVED_PARAMS: Final = ("workflow_ctx", "workflow_meta")


class _Unresolved:
    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED: Final = _Unresolved()
"""A type that cannot be known (no annotation, a bare type variable)."""

_VAR_KINDS: Final = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True, slots=True)
class Params:
    """The keyword-facing view of a signature."""

    by_name: dict[str, inspect.Parameter]
    takes_var_kwargs: bool
    hints: Callable[[], dict[str, Any] | None]

    def accepts_keyword(self, name: str) -> bool:
        param = self.by_name.get(name)
        if param is not None and param.kind is not inspect.Parameter.POSITIONAL_ONLY:
            return param.kind not in _VAR_KINDS
        return self.takes_var_kwargs

    def declared(self, name: str) -> inspect.Parameter | None:
        """The named, keyword-passable parameter, if the signature declares one."""
        param = self.by_name.get(name)
        if param is None or param.kind in _VAR_KINDS:
            return None
        return None if param.kind is inspect.Parameter.POSITIONAL_ONLY else param

    def required(self) -> list[inspect.Parameter]:
        return [
            p for p in self.by_name.values()
            if p.default is inspect.Parameter.empty and p.kind not in _VAR_KINDS
        ]


def _params_of(sig: inspect.Signature, fn: Callable[..., Any], skip_first: bool) -> Params:
    items = list(sig.parameters.values())
    if skip_first and items and items[0].kind not in _VAR_KINDS:
        items = items[1:]
    return Params(
        by_name={p.name: p for p in items},
        takes_var_kwargs=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in items),
        hints=functools.partial(_hints, fn),
    )


@functools.lru_cache(maxsize=1024)
def _hints(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """Resolved annotations, or None when they cannot be resolved."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is reported, not raised
        return None


def task_params(task: Any) -> Params:
    """Parameters of a task function (the function `@app.task` wrapped)."""
    fn = inspect.unwrap(task)
    return _params_of(task.signature, fn, skip_first=False)


def build_with_params(definition: type[Any]) -> tuple[inspect.Signature, Params] | None:
    """`build_with`'s signature without `cls`, and its parameters without `app`."""
    method = definition.build_with
    fn = inspect.unwrap(getattr(method, "__func__", method))
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None
    return sig, _params_of(sig, fn, skip_first=True)


# -- types ----------------------------------------------------------------------


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_task_result(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return isinstance(origin, type) and issubclass(origin, TaskResult)


def result_param_type(annotation: Any) -> Any | None:
    """`X` of `TaskResult[X, E]` (alone or the one TaskResult member of a union), else None."""
    annotation = _strip(annotation)
    if _is_task_result(annotation):
        args = typing.get_args(annotation)
        return args[0] if len(args) == 2 else None
    if _is_union(annotation):
        members = [_strip(m) for m in typing.get_args(annotation)]
        results = [m for m in members if _is_task_result(m)]
        return result_param_type(results[0]) if len(results) == 1 else None
    return None


def _known(tp: Any) -> Any:
    return UNRESOLVED if isinstance(tp, TypeVar) else tp


def node_ok_type(node: Any) -> Any:
    """A node's success type: the task's declared ok type, or the child's `OkT`."""
    from horsies.workflows.nodes import TaskNode

    if isinstance(node, TaskNode):
        return _known(getattr(node.fn, "task_ok_type", UNRESOLVED))
    return declared_output_type(node.workflow_def)


def declared_output_type(definition: type[Any]) -> Any:
    """`OkT` of `WorkflowDefinition[OkT]` in the class bases; UNRESOLVED when not given."""
    from horsies.workflows.definition import WorkflowDefinition

    for cls in definition.__mro__:
        for base in cls.__dict__.get("__orig_bases__", ()):
            if typing.get_origin(base) is WorkflowDefinition:
                args = typing.get_args(base)
                return _known(args[0]) if len(args) == 1 else UNRESOLVED
    return UNRESOLVED


def _none_to_type(tp: Any) -> Any:
    return type(None) if tp is None else tp


def is_compatible(source: Any, expected: Any) -> bool:
    """Whether a value of type `source` may go where `expected` is declared (§11.3)."""
    source, expected = _none_to_type(_strip(source)), _none_to_type(_strip(expected))
    if source is Any or expected is Any or source == expected:
        return True
    if _is_union(expected):
        return any(is_compatible(source, member) for member in typing.get_args(expected))
    if _is_union(source):
        return all(is_compatible(member, expected) for member in typing.get_args(source))
    if isinstance(source, type) and isinstance(expected, type):
        try:
            return issubclass(source, expected)
        except TypeError:
            return False
    return False


def type_name(tp: Any) -> str:
    if tp is UNRESOLVED:
        return "unknown"
    if tp is Any:
        return "Any"
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")
