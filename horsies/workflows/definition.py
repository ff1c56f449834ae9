"""`WorkflowDefinition[OkT]`: workflows declared as classes (workflows.md §4.3).

When a subclass is created its node attributes are collected in body order
(each without an id takes its attribute name), the class is registered under
its `definition_key` (how workers find child definitions), and its
`build_with` is wrapped to enforce the fresh-spec rule.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from horsies.errors import ErrorCode, WorkflowValidationError, raise_collected
from horsies.workflows.diagnostics import location_of
from horsies.workflows.nodes import AnyNode, OnError, SubWorkflowNode, TaskNode
from horsies.workflows.spec import (
    BUILD_CALL,
    BuildCall,
    SuccessCase,
    SuccessPolicy,
    WorkflowSpec,
    copy_graph,
)

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = ["WorkflowDefinition", "get_workflow_definition", "registered_definitions"]

OkT = TypeVar("OkT")

_NODES_ATTR = "__horsies_nodes__"
_registry: dict[str, type[Any]] = {}
_registry_lock = threading.Lock()


def get_workflow_definition(definition_key: str) -> type[WorkflowDefinition[Any]] | None:
    """The definition class registered under `definition_key` in this process, if any."""
    return _registry.get(definition_key)


def registered_definitions() -> dict[str, type[WorkflowDefinition[Any]]]:
    """A copy of the process-wide registry: definition_key -> class."""
    return dict(_registry)


def _register(cls: type[Any], key: str) -> None:
    with _registry_lock:
        known = _registry.get(key)
        # The same class statement run again (a reloaded module) replaces its entry.
        if known is not None and known is not cls and _origin(known) != _origin(cls):
            raise WorkflowValidationError(
                f"definition_key {key!r} of {cls.__qualname__} is already taken by "
                f"{known.__module__}.{known.__qualname__}",
                code=ErrorCode.WORKFLOW_DUPLICATE_DEFINITION_KEY,
                help_text="give every workflow definition its own definition_key",
            ).with_location(location_of(cls))
        _registry[key] = cls


def _origin(cls: type[Any]) -> tuple[str, str]:
    return cls.__module__, cls.__qualname__


class _DefinitionMeta(type):
    """Collects nodes, registers the class and wraps its build_with."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any
    ) -> _DefinitionMeta:
        nodes = [
            (attr, value) for attr, value in namespace.items()
            if isinstance(value, (TaskNode, SubWorkflowNode))
        ]
        for attr, node in nodes:
            if node.node_id is None:
                node.node_id = attr
        if "build_with" in namespace:
            namespace["build_with"] = _wrap_build_with(namespace["build_with"])
        namespace[_NODES_ATTR] = tuple(nodes)
        cls = super().__new__(mcs, name, bases, namespace, **kw)
        key = namespace.get("definition_key")
        if isinstance(key, str) and key.strip():
            _register(cls, key)
        return cls


def _wrap_build_with(method: Any) -> classmethod[Any, ..., Any]:
    """`build_with` as a classmethod that checks the spec it returns (§4.3)."""
    fn: Callable[..., Any] = method.__func__ if isinstance(method, classmethod) else method
    if isinstance(method, staticmethod):
        static = method.__func__
        fn = lambda cls, *args, **kwargs: static(*args, **kwargs)
        functools.update_wrapper(fn, static)

    @functools.wraps(fn)
    def build_with(cls: type[Any], app: Any, *args: Any, **params: Any) -> Any:
        call = BuildCall(_own_key(cls), cls, object())
        reset = BUILD_CALL.set(call)
        try:
            spec = fn(cls, app, *args, **params)
        finally:
            BUILD_CALL.reset(reset)
        _check_built(cls, spec, call.token)
        return spec

    return classmethod(build_with)


def _check_built(cls: type[Any], spec: object, token: object) -> None:
    if not isinstance(spec, WorkflowSpec):
        raise WorkflowValidationError(
            f"{cls.__qualname__}.build_with() must return a WorkflowSpec, got "
            f"{type(spec).__name__}",
        ).with_location(location_of(cls))
    if spec._build_token is not token:
        raise WorkflowValidationError(
            "build_with() must return a fresh WorkflowSpec per call",
            notes=[f"{cls.__qualname__}.build_with returned a spec built outside this call"],
            help_text="build the spec inside build_with (app.workflow(...)) on every call",
        ).with_location(location_of(cls))
    raise_collected(_output_type_errors(spec))


def _output_type_errors(spec: WorkflowSpec[Any]) -> list[Any]:
    # Imported on use: validation is only needed once a spec is built, and worker
    # children that merely import definition modules never build one.
    from horsies.workflows.validation import output_type_errors

    return output_type_errors(spec)


def _own_key(cls: type[Any]) -> str | None:
    key = cls.__dict__.get("definition_key")
    return key if isinstance(key, str) and key.strip() else None


class WorkflowDefinition(Generic[OkT], metaclass=_DefinitionMeta):
    """Base class of class-declared workflows; `OkT` is the workflow's output type."""

    name: ClassVar[str]
    definition_key: ClassVar[str]

    @classmethod
    def get_workflow_nodes(cls) -> list[tuple[str, AnyNode]]:
        """`(attribute name, node)` for the nodes declared in this class's own body."""
        return list(cls.__dict__.get(_NODES_ATTR, ()))

    @classmethod
    def build(cls, app: Horsies) -> WorkflowSpec[OkT]:
        """A spec of the class-level nodes (copied, so the class is never changed)."""
        name, key = _checked_class(cls)
        pairs = cls.get_workflow_nodes()
        meta = cls.__dict__.get("Meta")
        by_name = dict(pairs)
        graph = copy_graph(
            [node for _, node in pairs],
            _named(by_name, getattr(meta, "output", None)),
            _named_policy(by_name, getattr(meta, "success_policy", None)),
        )
        spec: WorkflowSpec[Any] = app.workflow(
            name,
            graph.nodes,
            on_error=getattr(meta, "on_error", OnError.FAIL),
            output=graph.output,
            success_policy=graph.policy,
            definition_key=key,
            workflow_def_cls=cls,
        )
        raise_collected(_output_type_errors(spec))
        return spec

    @classmethod
    def build_with(cls, app: Horsies, *args: Any, **params: Any) -> WorkflowSpec[OkT]:
        """The parameterized form; the base ignores `params`. Override it as a classmethod."""
        return cls.build(app)


def _named(by_name: dict[str, AnyNode], ref: Any) -> Any:
    """A node given by its attribute name (a nested `class Meta` body cannot see the
    outer class's names, so `output = "pdf"` is how it refers to a node)."""
    return by_name.get(ref, ref) if isinstance(ref, str) else ref


def _named_policy(by_name: dict[str, AnyNode], policy: Any) -> Any:
    if not isinstance(policy, SuccessPolicy):
        return policy
    cases = [
        SuccessCase([_named(by_name, ref) for ref in case.required])
        if isinstance(case, SuccessCase) else case
        for case in policy.cases
    ]
    optional = None if policy.optional is None else [
        _named(by_name, ref) for ref in policy.optional
    ]
    return SuccessPolicy(cases, optional)


def _checked_class(cls: type[Any]) -> tuple[str, str]:
    name = getattr(cls, "name", None)
    errors = []
    if not isinstance(name, str) or not name.strip():
        errors.append(_class_error(cls, ErrorCode.WORKFLOW_NO_NAME,
                                   f"{cls.__qualname__} has no name",
                                   'declare name = "..." on the class'))
    if not cls.get_workflow_nodes():
        errors.append(_class_error(cls, ErrorCode.WORKFLOW_NO_NODES,
                                   f"{cls.__qualname__} declares no nodes",
                                   "declare TaskNode / SubWorkflowNode class attributes"))
    key = _own_key(cls)
    if key is None:
        errors.append(_class_error(cls, ErrorCode.WORKFLOW_NO_DEFINITION_KEY,
                                   f"{cls.__qualname__} has no definition_key",
                                   'declare definition_key = "..." on the class itself'))
    raise_collected(errors)
    assert isinstance(name, str) and key is not None
    return name, key


def _class_error(
    cls: type[Any], code: ErrorCode, message: str, hint: str
) -> WorkflowValidationError:
    error = WorkflowValidationError(message, code=code, help_text=hint)
    location = location_of(cls)
    return error.with_location(location) if location is not None else error

