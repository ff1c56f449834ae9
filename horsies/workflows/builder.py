"""The typed node builder: `task.node(...)(...)` and `from_node` (workflows.md §4.4).

`task.node(**options)` takes the workflow options of one node and returns a
`NodeFactory`; calling the factory with the task's own keyword arguments builds
the `TaskNode`. The factory's `__call__` carries the task's `ParamSpec`, so a
type checker checks those arguments against the task signature. A value made by
`from_node(upstream)` is not a static argument: the factory turns it into an
`args_from` entry and makes the node wait for `upstream`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from horsies.errors import ErrorCode, WorkflowValidationError
from horsies.workflows.nodes import (
    AnyNode,
    JoinMode,
    SubWorkflowNode,
    TaskNode,
    _check_good_until,
    _check_priority,
)

if TYPE_CHECKING:
    from horsies.tasks.decorator import TaskFunction

__all__ = ["FromNode", "NodeFactory", "from_node"]

P = ParamSpec("P")
T = TypeVar("T")


class FromNode:
    """What `from_node(upstream)` returns: "inject `upstream`'s TaskResult here".

    Only a node factory converts it; anywhere else it is a mistake that the spec
    build reports (HRS-008).
    """

    __slots__ = ("node",)

    node: AnyNode

    def __init__(self, node: AnyNode) -> None:
        object.__setattr__(self, "node", node)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a from_node marker is immutable")

    def __repr__(self) -> str:
        shown = f"node_id={self.node.node_id!r}" if self.node.node_id else "no node_id"
        return f"from_node(<{type(self.node).__name__} {self.node.name!r} {shown}>)"


def from_node(upstream: AnyNode) -> Any:
    """Mark a task argument as "the `TaskResult` of `upstream`" for a node factory.

    Typed `Any` so it fits any parameter. Raises `WorkflowValidationError` HRS-008
    when `upstream` is not a `TaskNode` or `SubWorkflowNode`.
    """
    if not isinstance(upstream, (TaskNode, SubWorkflowNode)):
        raise WorkflowValidationError(
            f"from_node() needs a TaskNode or SubWorkflowNode, got {_kind(upstream)}",
            code=ErrorCode.WORKFLOW_INVALID_ARGS_FROM,
            help_text="pass the upstream node itself, e.g. from_node(fetch)",
        )
    return FromNode(upstream)


def _kind(value: object) -> str:
    if isinstance(value, FromNode):
        return "a from_node marker (pass the node, not from_node(node))"
    return f"a {type(value).__name__}"


class NodeFactory(Generic[P, T]):
    """Builds `TaskNode[T]`s of one task with fixed workflow options.

    Made by `task.node(...)`; each call builds a new node, so one factory can make
    several. Positional arguments are refused (HRS-026): nodes take keywords only.
    """

    __slots__ = (
        "_allow_failed_deps", "_args_from", "_fn", "_good_until", "_join", "_min_success",
        "_node_id", "_priority", "_queue", "_waits_for", "_workflow_ctx_from",
    )

    def __init__(
        self,
        fn: TaskFunction[P, T],
        *,
        waits_for: Sequence[AnyNode] | None = None,
        args_from: Mapping[str, AnyNode] | None = None,
        workflow_ctx_from: Sequence[AnyNode] | None = None,
        node_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        allow_failed_deps: bool = False,
        join: JoinMode = "all",
        min_success: int | None = None,
        good_until: datetime | None = None,
    ) -> None:
        _check_priority(priority)
        _check_good_until(good_until)
        self._fn = fn
        # Copies: later changes to the caller's containers do not reach the nodes.
        self._waits_for = tuple(waits_for) if waits_for is not None else ()
        self._args_from = dict(args_from) if args_from is not None else {}
        self._workflow_ctx_from = (
            None if workflow_ctx_from is None else tuple(workflow_ctx_from)
        )
        self._node_id = node_id
        self._queue = queue
        self._priority = priority
        self._allow_failed_deps = allow_failed_deps
        self._join: JoinMode = join
        self._min_success = min_success
        self._good_until = good_until

    def __repr__(self) -> str:
        return f"<NodeFactory {self._fn.task_name!r} node_id={self._node_id!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskNode[T]:
        """The node: static keywords go to `kwargs`, `from_node` values to `args_from`
        (their upstream joins `waits_for` unless already there)."""
        if args:
            raise self._error(
                ErrorCode.WORKFLOW_POSITIONAL_ARGS_NOT_SUPPORTED,
                f"{len(args)} positional argument(s) given to the node factory; "
                "workflow nodes take keyword arguments only",
                help_text=f"name each argument: {self._fn.task_name}.node(...)(param=value)",
            )
        static: dict[str, Any] = {}
        injected: dict[str, AnyNode] = {}
        for key, value in kwargs.items():
            if isinstance(value, FromNode):
                injected[key] = value.node
            else:
                static[key] = value
        both = [key for key in injected if key in self._args_from]
        if both:
            raise self._error(
                ErrorCode.WORKFLOW_KWARGS_ARGS_FROM_OVERLAP,
                f"parameter(s) {', '.join(map(repr, both))} given both as from_node(...) "
                "and in args_from",
                help_text="give each parameter one source",
            )
        waits_for = list(self._waits_for)
        for upstream in injected.values():
            if not any(dep is upstream for dep in waits_for):
                waits_for.append(upstream)
        return TaskNode(
            self._fn,
            kwargs=static,
            waits_for=waits_for,
            args_from={**self._args_from, **injected},
            workflow_ctx_from=self._workflow_ctx_from,
            queue=self._queue,
            priority=self._priority,
            allow_failed_deps=self._allow_failed_deps,
            join=self._join,
            min_success=self._min_success,
            good_until=self._good_until,
            node_id=self._node_id,
        )

    def _error(
        self, code: ErrorCode, message: str, *, help_text: str
    ) -> WorkflowValidationError:
        # Raised at once: the location is the caller's line (HorsiesError's default).
        return WorkflowValidationError(
            f"task '{self._fn.task_name}': {message}", code=code, help_text=help_text
        )
