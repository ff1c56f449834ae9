"""The workflow phases of `app.check()` (app-and-config.md §5, workflows.md §4.5).

3.1 every imported `WorkflowDefinition` (and the children it names, at most
    32 levels deep) has a `definition_key`;
3.2 every `@app.workflow_builder` function runs, with sends suppressed, and
    returns a valid spec with a `definition_key`;
3.3 functions of the discovered modules annotated to return a `WorkflowSpec`
    but not registered are reported.

Problems are returned, never raised.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, get_origin

from horsies.errors import (
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    WorkflowValidationError,
)
from horsies.workflows.definition import WorkflowDefinition
from horsies.workflows.diagnostics import location_of
from horsies.workflows.nodes import SubWorkflowNode
from horsies.workflows.spec import WorkflowSpec

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = [
    "MAX_SUBWORKFLOW_DEPTH",
    "BuilderEntry",
    "check_one_builder",
    "check_undecorated_builders",
    "check_workflow_builders",
    "check_workflow_definitions",
    "flatten",
]

MAX_SUBWORKFLOW_DEPTH: Final = 32
_SPEC_ANNOTATION: Final = re.compile(r"^(?:[A-Za-z_][\w]*\.)*WorkflowSpec(?:\[.*\])?$", re.DOTALL)
_BUILDER_MARKER: Final = "__horsies_workflow_builder__"
_NO_CHECK_MARKER: Final = "__horsies_no_check__"


def flatten(error: HorsiesError) -> list[HorsiesError]:
    """The errors inside a `MultipleValidationErrors`, or the error itself."""
    if isinstance(error, MultipleValidationErrors):
        return [e for inner in error.errors for e in flatten(inner)]
    return [error]


def _module_names(modules: list[ModuleType]) -> set[str]:
    return {module.__name__ for module in modules}


# -- phase 3.1: workflow definitions -------------------------------------------------


def _all_subclasses(base: type[Any]) -> Iterator[type[Any]]:
    seen: set[type[Any]] = set()
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def _is_concrete(cls: type[WorkflowDefinition[Any]]) -> bool:
    # A plain intermediate base (no name, no nodes of its own) is not a workflow.
    return "name" in cls.__dict__ or bool(cls.get_workflow_nodes())


def _definition_key_error(cls: type[Any]) -> HorsiesError | None:
    key = cls.__dict__.get("definition_key")
    if isinstance(key, str) and key.strip():
        return None
    return WorkflowValidationError(
        f"workflow definition '{cls.__qualname__}' has no definition_key",
        code=ErrorCode.WORKFLOW_NO_DEFINITION_KEY,
        notes=[f"defined in module '{cls.__module__}'"],
        help_text='declare a stable key on the class itself, for example\n'
        'definition_key = "billing.invoice_run.v1"',
    ).with_location(location_of(cls))


def check_workflow_definitions(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    """HRS-016 for the definitions of the discovered modules and the children they name."""
    names = _module_names(modules)
    errors: list[HorsiesError] = []
    seen: set[type[Any]] = set()
    frontier = [(cls, 0) for cls in _all_subclasses(WorkflowDefinition) if cls.__module__ in names]
    while frontier:
        cls, depth = frontier.pop(0)
        if cls in seen or depth > MAX_SUBWORKFLOW_DEPTH:
            continue
        seen.add(cls)
        if depth == 0 and not _is_concrete(cls):
            continue
        error = _definition_key_error(cls)
        if error is not None:
            errors.append(error)
        for _, node in cls.get_workflow_nodes():
            if isinstance(node, SubWorkflowNode):
                frontier.append((node.workflow_def, depth + 1))
    return errors


# -- phase 3.2: workflow builders ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuilderEntry:
    """A function registered with `@app.workflow_builder` and its check cases."""

    fn: Callable[..., Any]
    cases: list[Any] | None


def _required_params(sig: inspect.Signature) -> list[str]:
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in skip
    ]


_BUILDER_HELP: Final[dict[ErrorCode, str]] = {
    ErrorCode.WORKFLOW_CHECK_CASES_REQUIRED: "give example arguments to check with:\n"
    "@app.workflow_builder(cases=[{...}])",
    ErrorCode.WORKFLOW_CHECK_CASE_INVALID: "each case is a dict of parameter name to value "
    "that supplies every required parameter",
    ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION: "a builder must return a WorkflowSpec with a "
    "definition_key (app.workflow(..., definition_key=...))",
}


def _builder_error(code: ErrorCode, fn: Any, message: str, *notes: str) -> HorsiesError:
    return WorkflowValidationError(
        message, code=code, notes=list(notes), help_text=_BUILDER_HELP.get(code)
    ).with_location(location_of(fn))


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", repr(fn)))


def _case_problems(fn: Any, sig: inspect.Signature, index: int, case: Any) -> list[HorsiesError]:
    code = ErrorCode.WORKFLOW_CHECK_CASE_INVALID
    name = _name(fn)
    if not isinstance(case, dict):
        return [_builder_error(code, fn, f"case {index} of builder '{name}' is not a dict",
                               f"got {type(case).__name__}")]
    errors: list[HorsiesError] = []
    params = sig.parameters.values()
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    positional_only = {p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY}
    unknown = [
        k for k in case
        if not isinstance(k, str) or k in positional_only
        or (k not in sig.parameters and not takes_kwargs)
    ]
    if unknown:
        errors.append(_builder_error(
            code, fn, f"case {index} of builder '{name}' uses unknown parameter(s)",
            f"unknown: {', '.join(map(str, unknown))}",
            f"parameters: {', '.join(sig.parameters)}",
        ))
    missing = [p for p in _required_params(sig) if p not in case]
    if missing:
        errors.append(_builder_error(
            code, fn, f"case {index} of builder '{name}' misses required parameter(s)",
            f"missing: {', '.join(missing)}",
        ))
    return errors


def _run_builder(fn: Any, kwargs: dict[str, Any], label: str) -> list[HorsiesError]:
    code = ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION
    name = _name(fn)
    try:
        result = fn(**kwargs)
    except HorsiesError as exc:
        return flatten(exc)
    except Exception as exc:  # noqa: BLE001 - reported as a check error
        return [_builder_error(code, fn, f"workflow builder '{name}' raised {label}",
                               f"{type(exc).__name__}: {exc}")]
    if not isinstance(result, WorkflowSpec):
        return [_builder_error(code, fn, f"workflow builder '{name}' did not return a "
                               f"WorkflowSpec {label}", f"got {type(result).__name__}")]
    key = result.definition_key
    if not (isinstance(key, str) and key.strip()):
        return [_builder_error(code, fn, f"workflow builder '{name}' returned a spec without "
                               f"definition_key {label}")]
    return []


def check_one_builder(entry: BuilderEntry) -> list[HorsiesError]:
    """Run one builder (once, or once per valid case) and report what went wrong."""
    fn = entry.fn
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        return [_builder_error(ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION, fn,
                               f"workflow builder '{_name(fn)}' has no inspectable signature",
                               str(exc))]
    if entry.cases is None:
        required = _required_params(sig)
        if required:
            return [_builder_error(
                ErrorCode.WORKFLOW_CHECK_CASES_REQUIRED, fn,
                f"workflow builder '{_name(fn)}' has required parameters but no cases",
                f"required: {', '.join(required)}",
            )]
        return _run_builder(fn, {}, "when called without arguments")
    cases = list(entry.cases) if isinstance(entry.cases, (list, tuple)) else [entry.cases]
    errors: list[HorsiesError] = []
    for index, case in enumerate(cases):
        problems = _case_problems(fn, sig, index, case)
        if problems:
            errors.extend(problems)
            continue
        errors.extend(_run_builder(fn, dict(case), f"for case {index} ({case!r})"))
    return errors


def check_workflow_builders(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    """Run every registered builder with sends suppressed."""
    errors: list[HorsiesError] = []
    app.suppress_sends(True)
    try:
        for fn, cases in app.get_workflow_builders():
            errors.extend(check_one_builder(BuilderEntry(fn, cases)))
    finally:
        app.suppress_sends(False)
    return errors


# -- phase 3.3: undecorated builders ---------------------------------------------------


def _returns_workflow_spec(fn: Any) -> bool:
    annotations = getattr(fn, "__annotations__", None)
    if not isinstance(annotations, dict) or "return" not in annotations:
        return False
    annotation = annotations["return"]
    if isinstance(annotation, str):
        return bool(_SPEC_ANNOTATION.match(annotation.strip()))
    target: Any = get_origin(annotation) or annotation
    return target is WorkflowSpec or getattr(target, "__name__", None) == "WorkflowSpec"


def check_undecorated_builders(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    """HRS-030: spec-returning functions of the discovered modules that are not registered."""
    registered = {id(fn) for fn, _ in app.get_workflow_builders()}
    errors: list[HorsiesError] = []
    for module in modules:
        for name, obj in list(vars(module).items()):
            if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            if id(obj) in registered or getattr(obj, _BUILDER_MARKER, False):
                continue
            if getattr(obj, _NO_CHECK_MARKER, False) or not _returns_workflow_spec(obj):
                continue
            errors.append(WorkflowValidationError(
                f"function '{name}' returns a WorkflowSpec but is not registered with "
                "@app.workflow_builder",
                code=ErrorCode.WORKFLOW_CHECK_UNDECORATED_BUILDER,
                notes=[f"in module '{module.__name__}'"],
                help_text="decorate it with @app.workflow_builder() (cases=[{...}] when it "
                f"takes parameters),\nor set {name}.__horsies_no_check__ = True to skip it",
            ).with_location(location_of(obj)))
    return errors
