"""Gate-2 checks of one node's inputs, join and conditions (workflows.md §11.3).

Each function returns the errors it found; none raises. `members` is the set
of `id()`s of the spec's own nodes.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar

from horsies.errors import ErrorCode, HorsiesError
from horsies.workflows.builder import FromNode
from horsies.workflows.diagnostics import describe, location_of, node_error
from horsies.workflows.nodes import AnyNode, SubWorkflowNode, TaskNode
from horsies.workflows.signatures import (
    RESERVED_PARAMS,
    UNRESOLVED,
    Params,
    build_with_params,
    is_compatible,
    node_ok_type,
    result_param_type,
    task_params,
    type_name,
)

__all__ = ["condition_ref", "node_errors"]

JOINS: Final = ("all", "any", "quorum")
_E = ErrorCode


def node_errors(node: AnyNode, members: set[int]) -> Iterator[HorsiesError]:
    """Every gate-2 problem of `node`, in the order of the §11.3 table."""
    yield from _args_from_errors(node)
    yield from _ctx_from_errors(node)
    yield from _overlap_errors(node)
    params = _params_for(node)
    if isinstance(params, HorsiesError):
        yield params
        params = None
    if params is not None:
        yield from _ctx_param_errors(node, params)
        yield from _key_errors(node, params)
        yield from _type_errors(node, params)
        yield from _missing_errors(node, params)
    yield from _join_errors(node, params)
    yield from _condition_errors(node)


def _is_node(value: object) -> bool:
    return isinstance(value, (TaskNode, SubWorkflowNode))


def _shown(ref: object) -> str:
    if isinstance(ref, (TaskNode, SubWorkflowNode)):
        return describe(ref) if ref.node_id is not None else describe(ref).replace(
            "node (unplaced)", "a node outside tasks")
    return f"a {type(ref).__name__}"


# -- HRS-008, HRS-009, HRS-021 ------------------------------------------------


def _args_from_errors(node: AnyNode) -> Iterator[HorsiesError]:
    for key, value in node.kwargs.items():
        if isinstance(value, FromNode):
            yield node_error(
                _E.WORKFLOW_INVALID_ARGS_FROM, node,
                f"kwargs[{key!r}] holds a from_node(...) marker, which only a node factory "
                "converts",
                help_text=f"build the node with task.node(...)({key}=from_node(upstream)), or "
                f"use args_from={{{key!r}: upstream}} with upstream in waits_for",
            )
    waits = {id(dep) for dep in node.waits_for}
    for param, source in node.args_from.items():
        if not _is_node(source):
            yield node_error(_E.WORKFLOW_INVALID_ARGS_FROM, node,
                             f"args_from[{param!r}] must be a node, got {_shown(source)}")
        elif id(source) not in waits:
            yield node_error(
                _E.WORKFLOW_INVALID_ARGS_FROM, node,
                f"args_from[{param!r}] reads {_shown(source)}, which is not in waits_for",
                help_text="add the source node to waits_for as well",
            )


def _ctx_from_errors(node: AnyNode) -> Iterator[HorsiesError]:
    waits = {id(dep) for dep in node.waits_for}
    for ref in node.workflow_ctx_from or ():
        if id(ref) not in waits:
            yield node_error(
                _E.WORKFLOW_INVALID_CTX_FROM, node,
                f"workflow_ctx_from lists {_shown(ref)}, which is not in waits_for",
                help_text="every workflow_ctx_from node must also be in waits_for",
            )


def _overlap_errors(node: AnyNode) -> Iterator[HorsiesError]:
    both = [key for key in node.args_from if key in node.kwargs]
    if both:
        yield node_error(
            _E.WORKFLOW_KWARGS_ARGS_FROM_OVERLAP, node,
            f"parameter(s) {', '.join(map(repr, both))} given in both kwargs and args_from",
            help_text="give each parameter one source",
        )


# -- the callable's parameters: HRS-010, 019, 020, 022, 023, 024 ------------------


def _params_for(node: AnyNode) -> Params | HorsiesError | None:
    """The parameters kwargs and args_from are checked against; None to skip those checks."""
    if isinstance(node, TaskNode):
        return task_params(node.fn)
    return _build_with_params(node)


def _keeps_default_build_with(definition: type[Any]) -> bool:
    from horsies.workflows.definition import WorkflowDefinition

    for cls in definition.__mro__:
        if "build_with" in cls.__dict__:
            return cls is WorkflowDefinition
    return True


def _build_with_params(node: SubWorkflowNode[Any]) -> Params | HorsiesError | None:
    definition = node.workflow_def
    given = [*node.kwargs, *node.args_from]
    if _keeps_default_build_with(definition):
        if not given:
            return None
        return node_error(
            _E.WORKFLOW_SUBWORKFLOW_PARAMS_REQUIRE_BUILD_WITH, node,
            f"passes parameter(s) {', '.join(map(repr, given))} but "
            f"{definition.__qualname__} keeps the default build_with, which would drop them",
            help_text="override build_with(cls, app, ...) as a classmethod that uses them",
        )
    found = build_with_params(definition)
    if found is None:
        return node_error(_E.WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING, node,
                          f"{definition.__qualname__}.build_with has no inspectable signature")
    sig, params = found
    problem = _binding_problem(sig, given)
    if problem is not None:
        return node_error(
            _E.WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING, node,
            f"{definition.__qualname__}.build_with cannot be called as "
            f"build_with(app, **params): {problem}",
            help_text="declare it as build_with(cls, app, <params>, *args, **kwargs)",
        )
    return params


def _binding_problem(sig: inspect.Signature, given: list[str]) -> str | None:
    items = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    if not items or items[0].kind not in positional:
        return "it has no positional app parameter"
    app_param = items[0]
    for param in items[1:]:
        if param.kind is inspect.Parameter.POSITIONAL_ONLY and param.default is param.empty:
            return f"required positional-only parameter {param.name!r} cannot be bound"
    if app_param.kind is not inspect.Parameter.VAR_POSITIONAL and app_param.name in given:
        return f"parameter {app_param.name!r} is the app and would be bound twice"
    return None


def _ctx_param_errors(node: AnyNode, params: Params) -> Iterator[HorsiesError]:
    if isinstance(node, TaskNode) and node.workflow_ctx_from is not None and (
        "workflow_ctx" not in params.by_name
    ):
        yield node_error(
            _E.WORKFLOW_CTX_PARAM_MISSING, node,
            "has workflow_ctx_from but its function has no workflow_ctx parameter",
            help_text="add `workflow_ctx: WorkflowContext | None = None` to the task",
        )


def _key_errors(node: AnyNode, params: Params) -> Iterator[HorsiesError]:
    for where, keys in (("kwargs", node.kwargs), ("args_from", node.args_from)):
        for key in keys:
            problem = _key_problem(node, params, key)
            if problem is not None:
                yield node_error(
                    _E.WORKFLOW_INVALID_KWARG_KEY, node, f"{where} key {key!r} {problem}",
                    f"accepted: {', '.join(_accepted(node, params)) or '(no parameters)'}",
                )


def _key_problem(node: AnyNode, params: Params, key: object) -> str | None:
    if not isinstance(key, str):
        return "is not a string"
    if isinstance(node, TaskNode) and key in RESERVED_PARAMS:
        return "is reserved: the workflow engine fills it"
    if not params.accepts_keyword(key):
        return "is not a keyword parameter of " + (
            f"task '{node.name}'" if isinstance(node, TaskNode) else "build_with"
        )
    return None


def _accepted(node: AnyNode, params: Params) -> list[str]:
    names = [name for name in params.by_name if params.declared(name) is not None]
    return [n for n in names if not (isinstance(node, TaskNode) and n in RESERVED_PARAMS)]


def _type_errors(node: AnyNode, params: Params) -> Iterator[HorsiesError]:
    waits = {id(dep) for dep in node.waits_for}
    for key, source in node.args_from.items():
        if key in node.kwargs or id(source) not in waits or not isinstance(key, str):
            continue  # those have codes of their own
        if params.declared(key) is None:
            continue
        problem = _type_problem(params, key, source)
        if problem is not None:
            yield node_error(_E.WORKFLOW_ARGS_FROM_TYPE_MISMATCH, node, problem[0], *problem[1:])


def _type_problem(params: Params, key: str, source: AnyNode) -> tuple[str, ...] | None:
    hints = params.hints()
    annotation = None if hints is None else hints.get(key)
    expected = None if annotation is None else result_param_type(annotation)
    if expected is None:
        shown = "none" if annotation is None else type_name(annotation)
        return ((f"args_from target parameter must be annotated as TaskResult[OkT, TaskError] "
                f"(parameter {key!r})"), f"annotation: {shown}")
    produced = node_ok_type(source)
    if produced is UNRESOLVED:
        return (f"unable to resolve args_from source output type (parameter {key!r})",
                f"source: {_shown(source)}")
    if is_compatible(produced, _any_if_var(expected)):
        return None
    return ((f"args_from[{key!r}] type mismatch: the source produces {type_name(produced)}, "
            f"the parameter expects TaskResult[{type_name(expected)}, ...]"),
            f"source: {_shown(source)}")


def _any_if_var(tp: Any) -> Any:
    return Any if isinstance(tp, TypeVar) else tp


def _missing_errors(node: AnyNode, params: Params) -> Iterator[HorsiesError]:
    supplied = set(node.kwargs) | set(node.args_from)
    for param in params.required():
        problem = _missing_problem(node, param, supplied)
        if problem is not None:
            yield node_error(_E.WORKFLOW_MISSING_REQUIRED_PARAMS, node, problem)


def _missing_problem(node: AnyNode, param: inspect.Parameter, supplied: set[Any]) -> str | None:
    name = param.name
    if isinstance(node, TaskNode):
        if name == "workflow_meta":
            return None
        if name == "workflow_ctx":
            if node.workflow_ctx_from is not None:
                return None
            return ("parameter 'workflow_ctx' has no default but the node has no "
                    "workflow_ctx_from; give it a default (= None)")
    if param.kind is inspect.Parameter.POSITIONAL_ONLY:
        return f"required positional-only parameter {name!r} cannot be supplied by keyword"
    if name in supplied:
        return None
    return f"required parameter {name!r} is not supplied by kwargs or args_from"


# -- HRS-013 --------------------------------------------------------------------


def _join_errors(node: AnyNode, params: Params | None) -> Iterator[HorsiesError]:
    code = _E.WORKFLOW_INVALID_JOIN
    join, minimum = node.join, node.min_success
    if join not in JOINS:
        yield node_error(code, node, f"unknown join {join!r}; use 'all', 'any' or 'quorum'")
        return
    if join != "quorum":
        if minimum is not None:
            yield node_error(code, node, f"min_success is only for join='quorum' (join={join!r})")
    elif isinstance(minimum, bool) or not isinstance(minimum, int):
        yield node_error(code, node, f"join='quorum' needs an int min_success, got {minimum!r}")
    elif not 1 <= minimum <= len(node.waits_for):
        yield node_error(code, node, f"min_success={minimum} must be between 1 and the number "
                         f"of dependencies ({len(node.waits_for)})")
    if join != "all" and params is not None:
        yield from _default_errors(node, params)


def _default_errors(node: AnyNode, params: Params) -> Iterator[HorsiesError]:
    for key in node.args_from:
        param = params.declared(key) if isinstance(key, str) else None
        if param is not None and param.default is inspect.Parameter.empty:
            yield node_error(
                _E.WORKFLOW_INVALID_JOIN, node,
                f"args_from target {key!r} needs a default with join={node.join!r}: a source "
                "that has not finished when the node starts is not passed",
                help_text=f"declare it as `{key}: TaskResult[T, TaskError] | None = None`",
            )


# -- conditions (§7) --------------------------------------------------------------


def _condition_errors(node: AnyNode) -> Iterator[HorsiesError]:
    for field in ("skip_when", "run_when"):
        condition = getattr(node, field)
        if condition is None:
            continue
        ref = condition_ref(condition)
        if ref.startswith("!"):
            error = node_error(
                _E.WORKFLOW_INVALID_JOIN, node, f"{field} {ref[1:]}",
                help_text="conditions are stored by reference: use a function defined at "
                "module level (or a staticmethod/classmethod of a module-level class)",
            )
            where = location_of(condition) if callable(condition) else None
            yield error.with_location(where) if where is not None else error
        else:
            object.__setattr__(node, f"_{field}_ref", ref)


def condition_ref(condition: Callable[..., Any]) -> str:
    """`module:qualname` that imports back to `condition`, or `!reason` when there is none."""
    if not callable(condition):
        return f"!must be callable, got {type(condition).__name__}"
    module = getattr(condition, "__module__", None)
    qualname = getattr(condition, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return "!has no module and qualified name"
    if module == "__main__":
        return "!is defined in __main__, which workers cannot import"
    if "<lambda>" in qualname or "<locals>" in qualname:
        return f"!{qualname} is a lambda or a nested function, which cannot be imported"
    found = _lookup(module, qualname)
    if found is None or not _same_callable(found, condition):
        return (f"!{module}:{qualname} does not import back to the same function "
                "(a bound method of an instance?)")
    return f"{module}:{qualname}"


def _lookup(module: str, qualname: str) -> Any:
    try:
        found: Any = sys.modules.get(module) or importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - an unimportable condition is reported
        return None
    return found


def _same_callable(found: Any, condition: Any) -> bool:
    return bool(found is condition or found == condition)
