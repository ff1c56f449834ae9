"""Workflow nodes: `TaskNode`, `SubWorkflowNode`, `OnError`, `slugify` (workflows.md §3, §8).

A node is a plain, mutable object until a `WorkflowSpec` copies it, validates
the copy and freezes it (§3.5). The spec never keeps the caller's objects, so
the same node can take part in several specs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeAlias, TypeVar

from horsies.errors import ErrorCode, WorkflowValidationError
from horsies.workflows.context import NodeKey

if TYPE_CHECKING:
    from horsies.tasks.decorator import TaskFunction
    from horsies.workflows.context import WorkflowContext
    from horsies.workflows.definition import WorkflowDefinition

__all__ = [
    "NODE_ID_MAX",
    "NODE_ID_PATTERN",
    "AnyNode",
    "Condition",
    "JoinMode",
    "OnError",
    "SubWorkflowNode",
    "TaskNode",
    "slugify",
]

OkT = TypeVar("OkT")

NODE_ID_MAX: Final = 128
NODE_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_\-:.]+$")
_NOT_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9_\-:.]")

JoinMode: TypeAlias = Literal["all", "any", "quorum"]
Condition: TypeAlias = "Callable[[WorkflowContext], bool]"


class OnError(enum.StrEnum):
    """What a workflow does when one of its nodes FAILS (workflows.md §8)."""

    FAIL = "fail"
    PAUSE = "pause"


def slugify(text: str) -> str:
    """`text` as a valid node id: spaces become `_`, other invalid characters go."""
    return _NOT_ID_CHARS.sub("", text.replace(" ", "_")) or "_"


class Freezable:
    """Refuses attribute assignment and deletion once frozen (§3.5)."""

    _frozen: bool = False

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(
                f"Cannot set '{name}' on frozen {type(self).__name__}: it belongs to a built "
                "WorkflowSpec; change the original object and build a new spec"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen:
            raise AttributeError(f"Cannot delete '{name}' on frozen {type(self).__name__}")
        object.__delattr__(self, name)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    @property
    def frozen(self) -> bool:
        return self._frozen


def _check_priority(priority: object) -> None:
    if priority is None:
        return
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise ValueError(f"priority must be an int from 1 (first) to 100 (last), got {priority!r}")


def _check_good_until(good_until: object) -> None:
    if good_until is None:
        return
    if not isinstance(good_until, datetime):
        raise TypeError(f"good_until must be a datetime, got {type(good_until).__name__}")
    if good_until.utcoffset() is None:
        raise ValueError("good_until must be timezone-aware (a naive datetime has no offset)")


class _Node(Freezable, Generic[OkT]):
    """What both node kinds share: inputs, join settings, conditions, identity."""

    kwargs: Mapping[str, Any]
    waits_for: Sequence[AnyNode]
    args_from: Mapping[str, AnyNode]
    workflow_ctx_from: Sequence[AnyNode] | None
    allow_failed_deps: bool
    skip_when: Condition | None
    run_when: Condition | None
    join: JoinMode
    min_success: int | None
    node_id: str | None
    _index: int | None
    # Whether node_id was derived by a spec (`name:index`): such an id is
    # dropped and derived again when the node is reused in another spec.
    _auto_id: bool
    # Filled by validation: `module:qualname` of each condition.
    _skip_when_ref: str | None
    _run_when_ref: str | None
    # Filled by the kwargs snapshot: the codec text of the static kwargs.
    _kwargs_json: str | None

    def _init_common(
        self,
        kwargs: Mapping[str, Any] | None,
        waits_for: Sequence[AnyNode] | None,
        args_from: Mapping[str, AnyNode] | None,
        workflow_ctx_from: Sequence[AnyNode] | None,
        allow_failed_deps: bool,
        skip_when: Condition | None,
        run_when: Condition | None,
        join: JoinMode,
        min_success: int | None,
        node_id: str | None,
    ) -> None:
        self.kwargs = dict(kwargs) if kwargs is not None else {}
        self.waits_for = list(waits_for) if waits_for is not None else []
        self.args_from = dict(args_from) if args_from is not None else {}
        self.workflow_ctx_from = list(workflow_ctx_from) if workflow_ctx_from is not None else None
        self.allow_failed_deps = allow_failed_deps
        self.skip_when = skip_when
        self.run_when = run_when
        self.join = join
        self.min_success = min_success
        self.node_id = node_id
        self._index = None
        self._auto_id = False
        self._skip_when_ref = None
        self._run_when_ref = None
        self._kwargs_json = None

    # -- read-only views ------------------------------------------------------

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def index(self) -> int | None:
        """Position in the task list of the spec that built this node; set by the spec."""
        return self._index

    def key(self) -> NodeKey[OkT]:
        """`NodeKey[OkT](node_id)`; an error while the node has no id yet."""
        if self.node_id is None:
            raise WorkflowValidationError(
                f"node of '{self.name}' has no node_id yet",
                code=ErrorCode.WORKFLOW_INVALID_NODE_ID,
                help_text="give the node an explicit node_id, or build the spec first",
            )
        return NodeKey(self.node_id)

    @property
    def skip_when_ref(self) -> str | None:
        """`module:qualname` of `skip_when`, once a spec validated the node."""
        return self._skip_when_ref

    @property
    def run_when_ref(self) -> str | None:
        """`module:qualname` of `run_when`, once a spec validated the node."""
        return self._run_when_ref

    @property
    def dependency_indices(self) -> tuple[int, ...]:
        """Indices of `waits_for` (deduplicated by the spec, first-seen order)."""
        return tuple(_index_of(dep) for dep in self.waits_for)

    @property
    def args_from_indices(self) -> dict[str, int]:
        """`{param: index of the source node}`."""
        return {param: _index_of(src) for param, src in self.args_from.items()}

    @property
    def workflow_ctx_from_ids(self) -> tuple[str, ...] | None:
        """Node ids of `workflow_ctx_from`, or None when not set."""
        if self.workflow_ctx_from is None:
            return None
        return tuple(_id_of(node) for node in self.workflow_ctx_from)

    # -- copying ----------------------------------------------------------

    def _copy(self) -> _Node[OkT]:
        """A mutable shallow copy for a new spec (§3.5): callables and classes are
        shared, containers are new, index is cleared, an automatic id dropped."""
        clone = object.__new__(type(self))
        state = dict(self.__dict__)
        state.update(
            _frozen=False,
            kwargs=dict(self.kwargs),
            waits_for=list(self.waits_for),
            args_from=dict(self.args_from),
            workflow_ctx_from=(
                None if self.workflow_ctx_from is None else list(self.workflow_ctx_from)
            ),
            _index=None,
            _skip_when_ref=None,
            _run_when_ref=None,
            _kwargs_json=None,
        )
        if state.get("_auto_id"):
            state.update(node_id=None, _auto_id=False)
        self._copy_state(state)
        clone.__dict__.update(state)
        return clone

    def _copy_state(self, state: dict[str, Any]) -> None:
        """Adjust the state a copy starts from (node kinds with more state override it)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} node_id={self.node_id!r} index={self._index}>"


def _index_of(node: AnyNode) -> int:
    if node.index is None:
        raise ValueError(f"node '{node.name}' has no index: it is not part of a built spec")
    return node.index


def _id_of(node: AnyNode) -> str:
    if node.node_id is None:
        raise ValueError(f"node '{node.name}' has no node_id: it is not part of a built spec")
    return node.node_id


class TaskNode(_Node[OkT]):
    """One call of a registered task inside a workflow (workflows.md §3.1)."""

    fn: TaskFunction[..., OkT]
    queue: str | None
    priority: int | None
    good_until: datetime | None

    def __init__(
        self,
        fn: TaskFunction[..., OkT],
        *,
        kwargs: Mapping[str, Any] | None = None,
        waits_for: Sequence[AnyNode] | None = None,
        args_from: Mapping[str, AnyNode] | None = None,
        workflow_ctx_from: Sequence[AnyNode] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        allow_failed_deps: bool = False,
        skip_when: Condition | None = None,
        run_when: Condition | None = None,
        join: JoinMode = "all",
        min_success: int | None = None,
        good_until: datetime | None = None,
        node_id: str | None = None,
    ) -> None:
        _check_task_function(fn)
        _check_priority(priority)
        _check_good_until(good_until)
        if queue is not None and not isinstance(queue, str):
            raise TypeError(f"queue must be a str or None, got {type(queue).__name__}")
        self.fn = fn
        self.queue = queue
        self.priority = priority
        self.good_until = good_until
        self._placed = False
        self._override: tuple[str | None, int | None] = (queue, priority)
        self._init_common(
            kwargs, waits_for, args_from, workflow_ctx_from, allow_failed_deps,
            skip_when, run_when, join, min_success, node_id,
        )

    @property
    def name(self) -> str:
        """The task name of `fn`."""
        return self.fn.task_name

    @property
    def placed(self) -> bool:
        """Whether `queue` and `priority` hold resolved values (app.workflow, or start)."""
        return self._placed

    def _place(self, queue: str, priority: int) -> None:
        """Record the resolved queue and priority (app.workflow, or start for a bare spec)."""
        object.__setattr__(self, "queue", queue)
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "_placed", True)

    def _copy_state(self, state: dict[str, Any]) -> None:
        # A copy of a placed node starts from the caller's overrides again, so a
        # resolved queue never passes for an override in another spec.
        if self._placed:
            state["queue"], state["priority"] = self._override
        else:
            state["_override"] = (self.queue, self.priority)
        state["_placed"] = False


def _check_task_function(fn: object) -> None:
    from horsies.tasks.decorator import TaskFunction

    if not isinstance(fn, TaskFunction):
        shown = getattr(fn, "__qualname__", type(fn).__name__)
        raise TypeError(
            f"TaskNode fn must be a function decorated with @app.task, got {shown}"
        )


class SubWorkflowNode(_Node[OkT]):
    """A whole child workflow run as one node (workflows.md §3.2)."""

    workflow_def: type[WorkflowDefinition[OkT]]

    def __init__(
        self,
        workflow_def: type[WorkflowDefinition[OkT]],
        *,
        kwargs: Mapping[str, Any] | None = None,
        waits_for: Sequence[AnyNode] | None = None,
        args_from: Mapping[str, AnyNode] | None = None,
        workflow_ctx_from: Sequence[AnyNode] | None = None,
        allow_failed_deps: bool = False,
        skip_when: Condition | None = None,
        run_when: Condition | None = None,
        join: JoinMode = "all",
        min_success: int | None = None,
        node_id: str | None = None,
    ) -> None:
        _check_definition_class(workflow_def)
        self.workflow_def = workflow_def
        self._init_common(
            kwargs, waits_for, args_from, workflow_ctx_from, allow_failed_deps,
            skip_when, run_when, join, min_success, node_id,
        )

    @property
    def name(self) -> str:
        """The child definition's workflow name."""
        return str(getattr(self.workflow_def, "name", None) or self.workflow_def.__name__)

    @property
    def definition_key(self) -> str | None:
        """The child's `definition_key` (declared on its class), if any."""
        key = self.workflow_def.__dict__.get("definition_key")
        return key if isinstance(key, str) else None


def _check_definition_class(workflow_def: object) -> None:
    from horsies.workflows.definition import WorkflowDefinition

    if not (isinstance(workflow_def, type) and issubclass(workflow_def, WorkflowDefinition)):
        raise TypeError(
            "SubWorkflowNode workflow_def must be a WorkflowDefinition subclass, got "
            f"{getattr(workflow_def, '__qualname__', type(workflow_def).__name__)}"
        )


AnyNode: TypeAlias = TaskNode[Any] | SubWorkflowNode[Any]
