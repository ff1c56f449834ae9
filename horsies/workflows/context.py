"""Values the engine hands to task bodies: `NodeKey`, `WorkflowMeta`,
`SubWorkflowSummary` and `WorkflowContext` (workflows.md §3.4, §5.3, §5.4, §10.4).

Task bodies run in workers that may never have built the spec, so every
lookup goes by `node_id`, never by object identity. Anything with a
`node_id` attribute (a `TaskNode`, a `SubWorkflowNode`, a `NodeKey`) is
accepted; the node classes are imported for type checkers only, because the
node module imports this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import msgspec

from horsies.codec import loads_json, rehydrate_value, task_result_from_json
from horsies.codes import OperationalErrorCode, OutcomeCode
from horsies.states import WorkflowStatus
from horsies.task_result import TaskError, TaskResult

if TYPE_CHECKING:
    from horsies.workflows.nodes import SubWorkflowNode, TaskNode

__all__ = [
    "NodeKey",
    "SubWorkflowSummary",
    "WorkflowContext",
    "WorkflowContextMissingIdError",
    "WorkflowMeta",
    "decode_stored_result",
    "decode_stored_summary",
    "undecodable_result",
    "upstream_skipped",
]

OkT = TypeVar("OkT")

MISSING_ID_MESSAGE: Final = (
    "TaskNode node_id is not set. Ensure WorkflowSpec assigns node_id "
    "or provide an explicit node_id."
)
UPSTREAM_SKIPPED_MESSAGE: Final = "Upstream dependency was SKIPPED"
_STRUCT_MARKER: Final = "__msgspec_struct__"
_ENUM_MARKER: Final = "__enum__"


class NodeKey(msgspec.Struct, Generic[OkT], frozen=True):
    """A typed reference to a node by its id, for lookups without the node object."""

    node_id: str


class WorkflowMeta(msgspec.Struct, frozen=True):
    """Where a task is running: given to every workflow node that declares
    `workflow_meta` (workflows.md §5.4)."""

    workflow_id: str
    task_index: int
    task_name: str


class SubWorkflowSummary(msgspec.Struct, Generic[OkT], frozen=True):
    """How a child workflow ended, as seen from its parent node (workflows.md §10.4)."""

    status: WorkflowStatus
    output: OkT | None
    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    skipped_tasks: int
    error_summary: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> SubWorkflowSummary[Any]:
        """A summary from parsed JSON: a plain object or the codec's Struct form.

        Stored summaries outlive code versions, so nothing here fails: a missing
        or malformed count is 0, an unknown status is FAILED, an output that
        cannot be rebuilt in this process is None.
        """
        payload = _struct_payload(data)
        return cls(
            status=_status_from_json(payload.get("status")),
            output=_output_from_json(payload.get("output")),
            total_tasks=_count_from_json(payload.get("total_tasks")),
            completed_tasks=_count_from_json(payload.get("completed_tasks")),
            failed_tasks=_count_from_json(payload.get("failed_tasks")),
            skipped_tasks=_count_from_json(payload.get("skipped_tasks")),
            error_summary=_error_summary_from_json(payload.get("error_summary")),
        )


def _struct_payload(data: Any) -> dict[str, Any]:
    """The field mapping of `data`, unwrapping the codec's tagged Struct form."""
    if not isinstance(data, dict):
        return {}
    if data.get(_STRUCT_MARKER) is True and isinstance(data.get("data"), dict):
        inner: dict[str, Any] = data["data"]
        return inner
    return data


def _status_from_json(value: Any) -> WorkflowStatus:
    if isinstance(value, WorkflowStatus):
        return value
    if isinstance(value, dict) and value.get(_ENUM_MARKER) is True:
        value = value.get("name", value.get("value"))  # the codec's tagged enum form
    try:
        return WorkflowStatus(value)
    except (ValueError, TypeError):
        return WorkflowStatus.FAILED


def _output_from_json(value: Any) -> Any:
    rebuilt = rehydrate_value(value, path="output")
    return rebuilt.ok_value if rebuilt.is_ok() else None


def _count_from_json(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def _error_summary_from_json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


class WorkflowContextMissingIdError(RuntimeError):
    """A `WorkflowContext` lookup got a node whose `node_id` is still None.

    The task wrapper reports it as `ContractCode.WORKFLOW_CTX_MISSING_ID`.
    """


def upstream_skipped(dependency_index: int) -> TaskResult[Any, TaskError]:
    """What a SKIPPED dependency supplies in place of a result (workflows.md §6.4)."""
    return TaskResult(
        err=TaskError(
            error_code=OutcomeCode.UPSTREAM_SKIPPED,
            message=UPSTREAM_SKIPPED_MESSAGE,
            data={"dependency_index": dependency_index},
        )
    )


def decode_stored_result(stored: Any, node: str) -> TaskResult[Any, TaskError]:
    """A stored result (text, parsed JSON or already a TaskResult) as a TaskResult.

    A result that cannot be decoded is handed over as a
    RESULT_DESERIALIZATION_ERROR result rather than failing the receiving task:
    the receiving task decides what an unusable input means (workflows.md §5.2).
    `node` names the input in that error (a parameter name or a node id).
    """
    if isinstance(stored, TaskResult):
        return stored
    tree = stored
    if isinstance(stored, str):
        parsed = loads_json(stored)
        if parsed.is_err():
            return undecodable_result(node, str(parsed.err_value))
        tree = parsed.ok_value
    decoded = task_result_from_json(tree)
    if decoded.is_err():
        return undecodable_result(node, str(decoded.err_value))
    return decoded.ok_value


def undecodable_result(node: str, problem: str) -> TaskResult[Any, TaskError]:
    """The RESULT_DESERIALIZATION_ERROR result handed over for an unusable input."""
    return TaskResult(
        err=TaskError(
            error_code=OperationalErrorCode.RESULT_DESERIALIZATION_ERROR,
            message=f"stored result of {node!r} cannot be decoded: {problem}",
            data={"node": node},
        )
    )


def decode_stored_summary(stored: Any) -> SubWorkflowSummary[Any]:
    """A stored summary (text, parsed JSON or already a summary) as a summary.

    Raises ValueError only for text that is not JSON at all; everything that
    parses goes through the tolerant `SubWorkflowSummary.from_json`.
    """
    if isinstance(stored, SubWorkflowSummary):
        return stored
    if isinstance(stored, str):
        tree = loads_json(stored)
        if tree.is_err():
            raise ValueError(f"stored sub-workflow summary is not JSON: {tree.err_value}")
        stored = tree.ok_value
    return SubWorkflowSummary.from_json(stored)


def _node_id(node: Any) -> str | None:
    """The lookup key of `node`; TypeError for objects that are not nodes or keys."""
    try:
        node_id = node.node_id
    except AttributeError:
        raise TypeError(
            f"expected a TaskNode, SubWorkflowNode or NodeKey, got {type(node).__name__}"
        ) from None
    if node_id is not None and not isinstance(node_id, str):
        raise TypeError(f"node_id must be a string, got {type(node_id).__name__}")
    return node_id


def _required_id(node: Any) -> str:
    node_id = _node_id(node)
    if node_id is None:
        raise WorkflowContextMissingIdError(MISSING_ID_MESSAGE)
    return node_id


class WorkflowContext:
    """The upstream results a node asked for with `workflow_ctx_from` (workflows.md §5.3).

    Built separately for each node when it is enqueued; read-only.
    """

    __slots__ = ("_results", "_summaries", "_task_index", "_task_name", "_workflow_id")

    def __init__(
        self,
        workflow_id: str,
        task_index: int,
        task_name: str,
        results_by_id: Mapping[str, TaskResult[Any, TaskError]] | None = None,
        summaries_by_id: Mapping[str, SubWorkflowSummary[Any]] | None = None,
    ) -> None:
        self._workflow_id = workflow_id
        self._task_index = task_index
        self._task_name = task_name
        # Own copies: a caller's later changes must not show through a read-only context.
        self._results: dict[str, TaskResult[Any, TaskError]] = dict(results_by_id or {})
        self._summaries: dict[str, SubWorkflowSummary[Any]] = dict(summaries_by_id or {})

    @classmethod
    def from_serialized(
        cls,
        workflow_id: str,
        task_index: int,
        task_name: str,
        results_by_id: Mapping[str, Any],
        summaries_by_id: Mapping[str, Any] | None = None,
    ) -> WorkflowContext:
        """A context from stored data, as the worker receives it.

        Results may be stored text, parsed JSON or TaskResults; one that cannot
        be decoded becomes a RESULT_DESERIALIZATION_ERROR result. Summaries may
        be stored text, parsed JSON or summaries (`SubWorkflowSummary.from_json`).
        """
        results = {key: decode_stored_result(value, key) for key, value in results_by_id.items()}
        summaries = {key: decode_stored_summary(value)
                     for key, value in (summaries_by_id or {}).items()}
        return cls(workflow_id, task_index, task_name, results, summaries)

    @property
    def workflow_id(self) -> str:
        """Id of the workflow running this node."""
        return self._workflow_id

    @property
    def task_index(self) -> int:
        """Index of this node in its spec."""
        return self._task_index

    @property
    def task_name(self) -> str:
        """Task name of this node."""
        return self._task_name

    def result_for(
        self, node: TaskNode[OkT] | SubWorkflowNode[OkT] | NodeKey[OkT]
    ) -> TaskResult[OkT, TaskError]:
        """The result of a node listed in `workflow_ctx_from`.

        Raises WorkflowContextMissingIdError when the node has no id yet, and
        KeyError when the node was not listed.
        """
        node_id = _required_id(node)
        try:
            return self._results[node_id]
        except KeyError:
            raise KeyError(
                f"TaskNode id '{node_id}' not in workflow context. "
                "Ensure the node is included in workflow_ctx_from."
            ) from None

    def has_result(
        self, node: TaskNode[Any] | SubWorkflowNode[Any] | NodeKey[Any]
    ) -> bool:
        """Whether a result for the node is present (False when its id is None)."""
        node_id = _node_id(node)
        return node_id is not None and node_id in self._results

    def summary_for(
        self, node: SubWorkflowNode[OkT] | NodeKey[OkT]
    ) -> SubWorkflowSummary[OkT]:
        """The summary of a child workflow listed in `workflow_ctx_from` (§10.4)."""
        node_id = _required_id(node)
        try:
            return self._summaries[node_id]
        except KeyError:
            raise KeyError(
                f"SubWorkflowNode id '{node_id}' not in workflow context summaries. "
                "Ensure the node is included in workflow_ctx_from."
            ) from None

    def has_summary(self, node: SubWorkflowNode[Any] | NodeKey[Any]) -> bool:
        """Whether a summary for the node is present (False when its id is None)."""
        node_id = _node_id(node)
        return node_id is not None and node_id in self._summaries

    def __repr__(self) -> str:
        return (
            f"WorkflowContext(workflow_id={self._workflow_id!r}, "
            f"task_index={self._task_index!r}, task_name={self._task_name!r}, "
            f"results={sorted(self._results)!r}, summaries={sorted(self._summaries)!r})"
        )
