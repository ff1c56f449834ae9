"""`WorkflowSpec`: a validated, frozen DAG of nodes (workflows.md §4.2, §9.2, §11).

The constructor copies the caller's nodes, derives ids and indices, validates
the copy (`horsies.workflows.validation`), snapshots static kwargs through the
codec, freezes everything and only then writes `index` and `node_id` back on
the caller's nodes (§3.5). A constructed spec is always valid and immutable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from horsies.errors import ErrorCode, WorkflowValidationError
from horsies.task_result import TaskError, TaskResult
from horsies.workflows.nodes import (
    AnyNode,
    Freezable,
    OnError,
    SubWorkflowNode,
    TaskNode,
)

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.db.broker import PostgresBroker
    from horsies.workflows.definition import WorkflowDefinition
    from horsies.workflows.handle import WorkflowHandle
    from horsies.workflows.start import WorkflowStartError, WorkflowStartResult

__all__ = [
    "BUILD_CALL",
    "BuildCall",
    "SuccessCase",
    "SuccessPolicy",
    "WorkflowSpec",
    "WorkflowTerminalResults",
    "encoded_kwargs",
    "normalize_on_error",
]

OutT = TypeVar("OutT")

WorkflowTerminalResults: TypeAlias = dict[str, TaskResult[Any, TaskError] | None]
"""The result of a workflow without output node: sink node id -> its result (§9.3)."""

NAME_MAX = 255  # horsies_workflows.name is VARCHAR(255)


class SuccessCase(Freezable):
    """A set of nodes that must all COMPLETE for the workflow to count as COMPLETED.

    Inside a `WorkflowDefinition`'s `Meta`, a node may be named by its attribute name.
    """

    required: Sequence[TaskNode[Any]]

    def __init__(self, required: Sequence[TaskNode[Any] | str]) -> None:
        self.required = list(required)  # type: ignore[arg-type]


class SuccessPolicy(Freezable):
    """Partial-success rules: the first satisfied case wins (workflows.md §9.2)."""

    cases: Sequence[SuccessCase]
    optional: Sequence[TaskNode[Any]] | None

    def __init__(
        self,
        cases: Sequence[SuccessCase],
        optional: Sequence[TaskNode[Any] | str] | None = None,
    ) -> None:
        self.cases = list(cases)
        self.optional = list(optional) if optional is not None else None  # type: ignore[arg-type]

    def as_indices(self) -> dict[str, Any]:
        """The stored form (workflows.md §18.1): cases as index lists."""
        document: dict[str, Any] = {
            "cases": [
                {"required_indices": [_index(node) for node in case.required]}
                for case in self.cases
            ]
        }
        if self.optional:
            document["optional_indices"] = [_index(node) for node in self.optional]
        return document


def _index(node: AnyNode) -> int:
    if node.index is None:
        raise ValueError(f"node '{node.name}' is not part of a built spec")
    return node.index


def normalize_on_error(value: object) -> OnError:
    """`OnError` from a member or its string value; ValueError naming on_error otherwise."""
    if isinstance(value, OnError):
        return value
    if isinstance(value, str):
        try:
            return OnError(value)
        except ValueError:
            pass
    raise ValueError(f"on_error must be OnError.FAIL, OnError.PAUSE, 'fail' or 'pause', got {value!r}")


@dataclass(frozen=True, slots=True)
class BuildCall:
    """One running `WorkflowDefinition.build_with` call (definition.py sets it)."""

    definition_key: str | None
    workflow_def_cls: type[Any]
    token: object


# Specs constructed while a build_with call runs inherit its definition key and
# record its token, which is how build_with knows the spec is fresh (§4.3).
BUILD_CALL: ContextVar[BuildCall | None] = ContextVar("horsies_build_call", default=None)


@dataclass(frozen=True, slots=True)
class Placement:
    """Queue and priority resolved by `app.workflow` for the node at `position`."""

    position: int
    queue: str
    priority: int


class WorkflowSpec(Freezable, Generic[OutT]):
    """A validated, immutable workflow DAG (workflows.md §4.2)."""

    name: str
    tasks: Sequence[AnyNode]
    on_error: OnError
    output: TaskNode[OutT] | SubWorkflowNode[OutT] | None
    success_policy: SuccessPolicy | None
    definition_key: str | None
    workflow_def_cls: type[WorkflowDefinition[Any]] | None
    resend_on_transient_err: bool
    _broker: PostgresBroker | None
    _app: Horsies | None
    _build_token: object | None

    def __init__(
        self,
        name: str,
        tasks: Sequence[AnyNode],
        on_error: OnError | str = OnError.FAIL,
        output: TaskNode[OutT] | SubWorkflowNode[OutT] | None = None,
        success_policy: SuccessPolicy | None = None,
        definition_key: str | None = None,
        workflow_def_cls: type[WorkflowDefinition[Any]] | None = None,
        broker: PostgresBroker | None = None,
        resend_on_transient_err: bool = False,
    ) -> None:
        self._construct(
            name, tasks, on_error, output, success_policy, definition_key,
            workflow_def_cls, broker, resend_on_transient_err,
        )

    def _construct(
        self,
        name: str,
        tasks: Sequence[AnyNode],
        on_error: OnError | str,
        output: AnyNode | None,
        success_policy: SuccessPolicy | None,
        definition_key: str | None,
        workflow_def_cls: type[WorkflowDefinition[Any]] | None,
        broker: PostgresBroker | None,
        resend_on_transient_err: bool,
        *,
        app: Horsies | None = None,
        placements: Sequence[Placement] = (),
        require_key: bool = False,
    ) -> None:
        from horsies.workflows.validation import validate_spec

        self.name = _checked_name(name)
        self.on_error = normalize_on_error(on_error)
        self.definition_key = definition_key
        self.workflow_def_cls = workflow_def_cls
        self.resend_on_transient_err = bool(resend_on_transient_err)
        self._broker = broker
        self._app = app
        self._build_token = None
        self._inherit_build_call()
        originals = list(tasks) if isinstance(tasks, Sequence) else _not_a_sequence(tasks)
        graph = copy_graph(originals, output, success_policy)
        self.tasks = graph.nodes
        self.output = graph.output
        self.success_policy = graph.policy
        validate_spec(self, graph, require_key=require_key)
        for placement in placements:
            node = self.tasks[placement.position]
            if isinstance(node, TaskNode):
                node._place(placement.queue, placement.priority)
        self._freeze_all()
        _write_back(originals, self.tasks)

    def _inherit_build_call(self) -> None:
        call = BUILD_CALL.get()
        if call is None:
            return
        self._build_token = call.token
        if self.definition_key is None:
            self.definition_key = call.definition_key
        if self.workflow_def_cls is None:
            self.workflow_def_cls = call.workflow_def_cls

    def _freeze_all(self) -> None:
        self.tasks = tuple(self.tasks)
        for node in self.tasks:
            _freeze_node(node)
        policy = self.success_policy
        if policy is not None:
            for case in policy.cases:
                case.required = tuple(case.required)
                case._freeze()
            policy.cases = tuple(policy.cases)
            if policy.optional is not None:
                policy.optional = tuple(policy.optional)
            policy._freeze()
        self._freeze()

    # -- attached app and broker ------------------------------------------

    @property
    def broker(self) -> PostgresBroker | None:
        """The broker `start()` uses: the one given, else the building app's (created lazily,
        so building a spec at import time does not load the database driver)."""
        if self._broker is not None:
            return self._broker
        return self._app.get_broker() if self._app is not None else None

    @property
    def app(self) -> Horsies | None:
        """The app that built this spec with `app.workflow(...)`, if any."""
        return self._app

    @property
    def output_index(self) -> int | None:
        return None if self.output is None else self.output.index

    # -- starting (horsies.workflows.start) --------------------------------

    def start(self, workflow_id: str | None = None) -> WorkflowStartResult[WorkflowHandle[OutT]]:
        from horsies.workflows.start import start_spec

        return start_spec(self, workflow_id)

    async def start_async(
        self, workflow_id: str | None = None
    ) -> WorkflowStartResult[WorkflowHandle[OutT]]:
        from horsies.workflows.start import start_spec_async

        return await start_spec_async(self, workflow_id)

    def retry_start(self, error: WorkflowStartError) -> WorkflowStartResult[WorkflowHandle[OutT]]:
        from horsies.workflows.start import retry_start_spec

        return retry_start_spec(self, error)

    async def retry_start_async(
        self, error: WorkflowStartError
    ) -> WorkflowStartResult[WorkflowHandle[OutT]]:
        from horsies.workflows.start import retry_start_spec_async

        return await retry_start_spec_async(self, error)

    def __repr__(self) -> str:
        return (
            f"<WorkflowSpec {self.name!r} nodes={len(self.tasks)} "
            f"definition_key={self.definition_key!r}>"
        )


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise WorkflowValidationError(
            f"a workflow needs a non-empty name, got {name!r}",
            code=ErrorCode.WORKFLOW_NO_NAME,
        )
    if len(name) > NAME_MAX:
        raise WorkflowValidationError(
            f"workflow name is longer than {NAME_MAX} characters ({len(name)})",
            code=ErrorCode.WORKFLOW_NO_NAME,
            help_text="use a shorter name; it is stored in a VARCHAR(255) column",
        )
    return name


def _not_a_sequence(tasks: object) -> list[AnyNode]:
    raise TypeError(f"tasks must be a sequence of nodes, got {type(tasks).__name__}")


# -- copying (§3.5) ----------------------------------------------------------


@dataclass(slots=True)
class Graph:
    """The spec's own copies of the caller's nodes, with references rewired."""

    nodes: list[AnyNode]
    output: AnyNode | None
    policy: SuccessPolicy | None
    # Positions of node objects listed more than once in `tasks`: (first, again).
    repeated: list[tuple[int, int]]


def copy_graph(
    originals: Sequence[AnyNode],
    output: AnyNode | None = None,
    policy: SuccessPolicy | None = None,
) -> Graph:
    """Copy every node and point references between them at the copies.

    References to objects outside `originals` are kept as they are so that
    validation can report them.
    """
    copies: dict[int, AnyNode] = {}
    nodes: list[AnyNode] = []
    repeated: list[tuple[int, int]] = []
    first_seen: dict[int, int] = {}
    for position, node in enumerate(originals):
        if not isinstance(node, (TaskNode, SubWorkflowNode)):
            raise TypeError(
                f"tasks[{position}] must be a TaskNode or SubWorkflowNode, got "
                f"{type(node).__name__}"
            )
        clone = node._copy()
        if id(node) in first_seen:
            repeated.append((first_seen[id(node)], position))
        else:
            first_seen[id(node)] = position
            copies[id(node)] = clone  # type: ignore[assignment]
        nodes.append(clone)  # type: ignore[arg-type]

    def swap(ref: Any) -> Any:
        return copies.get(id(ref), ref)

    for node in nodes:
        node.waits_for = _first_seen(swap(ref) for ref in node.waits_for)
        node.args_from = {param: swap(src) for param, src in node.args_from.items()}
        if node.workflow_ctx_from is not None:
            node.workflow_ctx_from = [swap(ref) for ref in node.workflow_ctx_from] or None
    return Graph(nodes, None if output is None else swap(output), _copy_policy(policy, swap),
                 repeated)


def _first_seen(refs: Any) -> list[Any]:
    """Duplicates (same object) collapsed, first-seen order kept (§3.5)."""
    seen: set[int] = set()
    unique: list[Any] = []
    for ref in refs:
        if id(ref) not in seen:
            seen.add(id(ref))
            unique.append(ref)
    return unique


def _copy_policy(policy: SuccessPolicy | None, swap: Any) -> SuccessPolicy | None:
    if policy is None:
        return None
    if not isinstance(policy, SuccessPolicy):
        raise TypeError(f"success_policy must be a SuccessPolicy, got {type(policy).__name__}")
    cases = [
        SuccessCase([swap(node) for node in case.required]) if isinstance(case, SuccessCase)
        else case
        for case in policy.cases
    ]
    optional = None if policy.optional is None else [swap(node) for node in policy.optional]
    return SuccessPolicy(cases, optional)


def _freeze_node(node: AnyNode) -> None:
    node.waits_for = tuple(node.waits_for)
    node.args_from = _read_only(node.args_from)
    if node.workflow_ctx_from is not None:
        node.workflow_ctx_from = tuple(node.workflow_ctx_from)
    node._freeze()


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    from types import MappingProxyType

    return MappingProxyType(dict(mapping))


def _write_back(originals: Sequence[AnyNode], copies: Sequence[AnyNode]) -> None:
    """Give the caller's (unfrozen) nodes their index and id, so task bodies can
    look results up with the original node objects (§3.5)."""
    for original, clone in zip(originals, copies, strict=True):
        if original.frozen:
            continue
        object.__setattr__(original, "_index", clone.index)
        object.__setattr__(original, "node_id", clone.node_id)
        object.__setattr__(original, "_auto_id", clone._auto_id)


def encoded_kwargs(node: AnyNode) -> str:
    """The codec JSON text of a built node's static kwargs (the build-time round trip)."""
    text = node._kwargs_json
    if text is None:
        raise ValueError(f"node '{node.name}' is not part of a built spec")
    return text
