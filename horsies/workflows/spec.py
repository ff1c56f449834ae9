"""`WorkflowSpec`: a validated, frozen DAG of nodes (workflows.md §4.2, §9.2, §11).

The constructor copies the caller's nodes, derives ids and indices, validates
the copy (`horsies.workflows.validation`), snapshots static kwargs through the
codec, freezes everything and only then writes `index` and `node_id` back on
the caller's nodes (§3.5). A constructed spec is always valid and immutable.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from horsies.errors import ErrorCode, WorkflowValidationError
from horsies.task_result import TaskError, TaskResult
from horsies.workflows.copying import Graph, copy_graph, freeze_node, write_back
from horsies.workflows.nodes import (
    AnyNode,
    Freezable,
    OnError,
    SubWorkflowNode,
    TaskNode,
)
from horsies.workflows.policy import SuccessCase, SuccessPolicy

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.db.broker import PostgresBroker
    from horsies.workflows.definition import WorkflowDefinition
    from horsies.workflows.handle import WorkflowHandle
    from horsies.workflows.start import WorkflowStartError, WorkflowStartResult

__all__ = [
    "BUILD_CALL",
    "BuildCall",
    "Graph",
    "SuccessCase",
    "SuccessPolicy",
    "WorkflowSpec",
    "WorkflowTerminalResults",
    "copy_graph",
    "encoded_kwargs",
    "normalize_on_error",
]

OutT = TypeVar("OutT")

WorkflowTerminalResults: TypeAlias = dict[str, TaskResult[Any, TaskError] | None]
"""The result of a workflow without output node: sink node id -> its result (§9.3)."""

NAME_MAX = 255  # horsies_workflows.name is VARCHAR(255)


def normalize_on_error(value: object) -> OnError:
    """`OnError` from a member or its string value; ValueError naming on_error otherwise."""
    if isinstance(value, OnError):
        return value
    if isinstance(value, str):
        try:
            return OnError(value)
        except ValueError:
            pass
    raise ValueError(
        f"on_error must be OnError.FAIL, OnError.PAUSE, 'fail' or 'pause', got {value!r}"
    )


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
        write_back(originals, self.tasks)

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
            freeze_node(node)
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


def encoded_kwargs(node: AnyNode) -> str:
    """The codec JSON text of a built node's static kwargs (the build-time round trip)."""
    text = node._kwargs_json
    if text is None:
        raise ValueError(f"node '{node.name}' is not part of a built spec")
    return text
