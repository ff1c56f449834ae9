"""Build-time validation of a `WorkflowSpec` (workflows.md §11) and the start-time
re-check (§4.2, §12.1 step 3).

Order (§11.2): no nodes → HRS-002 at once; gate 1, ids (HRS-003/004), raised
alone; gate 2, every other check, collected; gate 3, the kwargs snapshot
(HRS-031), collected with gate 2. One error is raised as itself, several as
`MultipleValidationErrors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from horsies.codec import dumps_json, json_to_kwargs, kwargs_to_json, loads_json
from horsies.errors import ErrorCode, HorsiesError, raise_collected
from horsies.workflows.builder import FromNode
from horsies.workflows.diagnostics import describe, location_of, node_error, spec_error
from horsies.workflows.node_checks import node_errors
from horsies.workflows.nodes import (
    NODE_ID_MAX,
    NODE_ID_PATTERN,
    AnyNode,
    SubWorkflowNode,
    TaskNode,
    slugify,
)
from horsies.workflows.signatures import (
    UNRESOLVED,
    declared_output_type,
    is_compatible,
    node_ok_type,
    type_name,
)

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.workflows.spec import Graph, WorkflowSpec

__all__ = [
    "deep_freeze",
    "definition_key_errors",
    "output_type_errors",
    "resolve_for_start",
    "validate_spec",
]

_E = ErrorCode
KEY_MAX = 255  # horsies_workflows.definition_key is VARCHAR(255)


def validate_spec(spec: WorkflowSpec[Any], graph: Graph, *, require_key: bool = False) -> None:
    """Raise the problems of `spec`'s copied graph; on success the copies hold their
    ids, indices, condition references and frozen kwargs snapshots."""
    nodes = graph.nodes
    if not nodes:
        raise spec_error(_E.WORKFLOW_NO_NODES, f"workflow '{spec.name}' has no tasks",
                         help_text="list at least one node in tasks")
    raise_collected(list(_id_errors(spec.name, nodes, graph.repeated)))
    members = {id(node) for node in nodes}
    errors: list[HorsiesError] = []
    if require_key:
        errors += definition_key_errors(spec)
    errors += _structure_errors(nodes, members)
    for node in nodes:
        errors += node_errors(node, members)
    errors += _subworkflow_errors(spec, nodes)
    errors += _output_errors(spec, members)
    errors += _policy_errors(spec, members)
    errors += _snapshot_errors(nodes)
    raise_collected(errors)


# -- gate 1: indices and ids ----------------------------------------------------------


def _id_errors(
    name: str, nodes: Sequence[AnyNode], repeated: Sequence[tuple[int, int]]
) -> Iterator[HorsiesError]:
    prefix = slugify(name)
    too_long = False
    for index, node in enumerate(nodes):
        object.__setattr__(node, "_index", index)
        if node.node_id is None:
            derived = f"{prefix}:{index}"
            if len(derived) > NODE_ID_MAX:
                too_long = True
                continue
            node.node_id, node._auto_id = derived, True
        else:
            problem = _id_problem(node.node_id)
            if problem is not None:
                yield node_error(_E.WORKFLOW_INVALID_NODE_ID, node, problem)
    if too_long:
        yield spec_error(
            _E.WORKFLOW_INVALID_NODE_ID,
            f"workflow name is too long to derive node ids ('{prefix[:40]}…:<index>' would "
            f"exceed {NODE_ID_MAX} characters)",
            help_text="use a shorter workflow name, or give every node an explicit node_id",
        )
    yield from _duplicate_errors(nodes, repeated)


def _id_problem(node_id: object) -> str | None:
    if not isinstance(node_id, str):
        return f"node_id must be a str, got {type(node_id).__name__}"
    if not node_id:
        return "node_id is empty"
    if len(node_id) > NODE_ID_MAX:
        return f"node_id is longer than {NODE_ID_MAX} characters ({len(node_id)})"
    if not NODE_ID_PATTERN.match(node_id):
        return f"node_id {node_id!r} has characters outside [A-Za-z0-9_\\-:.]"
    return None


def _duplicate_errors(
    nodes: Sequence[AnyNode], repeated: Sequence[tuple[int, int]]
) -> Iterator[HorsiesError]:
    for first, again in repeated:
        yield node_error(_E.WORKFLOW_DUPLICATE_NODE_ID, nodes[again],
                         f"the same node object is listed twice in tasks (at {first} and {again})")
    seen: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        if isinstance(node.node_id, str):
            seen.setdefault(node.node_id, []).append(index)
    listed_twice = {again for _, again in repeated}
    for node_id, indices in seen.items():
        if len(indices) > 1 and not set(indices[1:]) <= listed_twice:
            yield node_error(
                _E.WORKFLOW_DUPLICATE_NODE_ID, nodes[indices[1]],
                f"node_id {node_id!r} is used by the nodes at {', '.join(map(str, indices))}",
                help_text="node ids must be unique within a workflow",
            )


# -- gate 2: the graph ---------------------------------------------------------------


def _structure_errors(nodes: Sequence[AnyNode], members: set[int]) -> Iterator[HorsiesError]:
    for node in nodes:
        for dep in node.waits_for:
            if id(dep) not in members:
                yield node_error(_E.WORKFLOW_INVALID_DEPENDENCY, node,
                                 f"waits for {_shown(dep)}, which is not in tasks",
                                 help_text="add the dependency to tasks, or remove it")
    if all(node.waits_for for node in nodes):
        yield spec_error(_E.WORKFLOW_NO_ROOT_TASKS,
                         "every node waits for another: the workflow has no root to start from")
    stuck = _unsorted(nodes, members)
    if stuck:
        yield spec_error(
            _E.WORKFLOW_CYCLE_DETECTED,
            "the dependency graph has a cycle through "
            + ", ".join(describe(node) for node in stuck),
            "nodes left with unresolved dependencies: "
            + ", ".join(str(node.node_id) for node in stuck),
            help_text="remove one of the waits_for edges that close the loop",
        )


def _unsorted(nodes: Sequence[AnyNode], members: set[int]) -> list[AnyNode]:
    """Kahn's algorithm over the edges inside the spec: the nodes it cannot order."""
    pending = {id(n): sum(1 for d in n.waits_for if id(d) in members) for n in nodes}
    dependents: dict[int, list[AnyNode]] = {}
    for node in nodes:
        for dep in node.waits_for:
            if id(dep) in members:
                dependents.setdefault(id(dep), []).append(node)
    ready = [node for node in nodes if pending[id(node)] == 0]
    while ready:
        done = ready.pop()
        for child in dependents.get(id(done), ()):
            pending[id(child)] -= 1
            if pending[id(child)] == 0:
                ready.append(child)
    return [node for node in nodes if pending[id(node)] > 0]


def _shown(ref: object) -> str:
    if isinstance(ref, (TaskNode, SubWorkflowNode)):
        return f"a node of '{ref.name}'" + (f" ({ref.node_id!r})" if ref.node_id else "")
    return f"a {type(ref).__name__} (not a node)"


def _output_errors(spec: WorkflowSpec[Any], members: set[int]) -> Iterator[HorsiesError]:
    if spec.output is not None and id(spec.output) not in members:
        yield spec_error(_E.WORKFLOW_INVALID_OUTPUT,
                         f"output is {_shown(spec.output)}, which is not in tasks",
                         help_text="pick one of the workflow's own nodes as output")


def _policy_errors(spec: WorkflowSpec[Any], members: set[int]) -> Iterator[HorsiesError]:
    from horsies.workflows.spec import SuccessCase

    policy = spec.success_policy
    if policy is None:
        return
    code = _E.WORKFLOW_INVALID_SUCCESS_POLICY
    if not policy.cases:
        yield spec_error(code, "success_policy has no cases")
    for number, case in enumerate(policy.cases):
        if not isinstance(case, SuccessCase):
            yield spec_error(code, f"success_policy case {number} is not a SuccessCase")
            continue
        if not case.required:
            yield spec_error(code, f"success_policy case {number} requires no node")
        for ref in case.required:
            if id(ref) not in members:
                yield spec_error(code, f"success_policy case {number} requires {_shown(ref)}, "
                                 "which is not in tasks")
    for ref in policy.optional or ():
        if id(ref) not in members:
            yield spec_error(code, f"success_policy optional lists {_shown(ref)}, "
                             "which is not in tasks")


def _subworkflow_errors(
    spec: WorkflowSpec[Any], nodes: Sequence[AnyNode]
) -> Iterator[HorsiesError]:
    for node in nodes:
        if not isinstance(node, SubWorkflowNode):
            continue
        if not _has_key(node.workflow_def):
            yield node_error(_E.WORKFLOW_NO_DEFINITION_KEY, node,
                             f"child definition {node.workflow_def.__qualname__} has no "
                             "definition_key", help_text=_KEY_HELP)
        loop = _definition_loop(node.workflow_def, spec.workflow_def_cls)
        if loop:
            yield node_error(_E.WORKFLOW_CYCLE_DETECTED, node,
                             "workflow definitions contain each other: " + " -> ".join(loop))


def _definition_loop(child: type[Any], root: type[Any] | None) -> list[str]:
    """A chain of definitions through class-level SubWorkflowNodes that comes back."""
    path: list[type[Any]] = [] if root is None else [root]

    def visit(cls: type[Any]) -> list[str]:
        if cls in path:
            start = path.index(cls)
            return [c.__qualname__ for c in [*path[start:], cls]]
        path.append(cls)
        for _, node in cls.get_workflow_nodes():
            if isinstance(node, SubWorkflowNode):
                found = visit(node.workflow_def)
                if found:
                    return found
        path.pop()
        return []

    return visit(child)


# -- gate 3: kwargs snapshot ----------------------------------------------------------


def _snapshot_errors(nodes: Sequence[AnyNode]) -> Iterator[HorsiesError]:
    for node in nodes:
        yield from _snapshot(node)


def _snapshot(node: AnyNode) -> Iterator[HorsiesError]:
    """Round-trip the static kwargs through the codec and keep the result (§3.5)."""
    code = _E.WORKFLOW_KWARGS_NOT_SERIALIZABLE
    if any(isinstance(value, FromNode) for value in node.kwargs.values()):
        return  # a raw from_node marker is reported as itself (HRS-008), not as HRS-031
    encoded = kwargs_to_json(dict(node.kwargs))
    if encoded.is_err():
        for key, value in node.kwargs.items():
            single = dumps_json(value, path=f"kwargs[{key!r}]")
            if single.is_err():
                yield node_error(code, node, f"kwargs[{key!r}] cannot be serialized",
                                 str(single.err_value), help_text=_CODEC_HELP)
        return
    text = encoded.ok_value
    parsed = loads_json(text)
    decoded = json_to_kwargs(parsed.ok_value) if parsed.is_ok() else parsed
    if decoded.is_err():
        yield node_error(code, node, "kwargs do not survive the codec round trip",
                         str(decoded.err_value), help_text=_CODEC_HELP)
        return
    object.__setattr__(node, "kwargs", deep_freeze(decoded.ok_value))
    object.__setattr__(node, "_kwargs_json", text)


_CODEC_HELP = ("pass JSON-friendly values, or importable dataclasses / msgspec Structs "
               "(see the serialization chapter)")


def deep_freeze(value: Any) -> Any:
    """Read-only mappings, tuples for lists and tuples, frozensets for sets."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: deep_freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(deep_freeze(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(deep_freeze(item) for item in value)
    return value


# -- definition key and output type (also at start) -------------------------------------

_KEY_HELP = ('declare a stable key, for example definition_key="billing.invoice_run.v1"')


def _has_key(definition: type[Any]) -> bool:
    key = definition.__dict__.get("definition_key")
    return isinstance(key, str) and bool(key.strip())


def definition_key_errors(spec: WorkflowSpec[Any]) -> list[HorsiesError]:
    """HRS-016: a spec to be started needs a non-blank definition_key."""
    key = spec.definition_key
    if isinstance(key, str) and key.strip() and len(key) <= KEY_MAX:
        return []
    problem = "is longer than 255 characters" if isinstance(key, str) and key.strip() else (
        "is missing or blank")
    return [spec_error(_E.WORKFLOW_NO_DEFINITION_KEY,
                       f"workflow '{spec.name}': definition_key {problem}",
                       help_text="pass definition_key=... to app.workflow(); " + _KEY_HELP)]


def output_type_errors(spec: WorkflowSpec[Any]) -> list[HorsiesError]:
    """HRS-025: the definition's `OkT` against the spec's output node."""
    cls = spec.workflow_def_cls
    if cls is None:
        return []
    declared = declared_output_type(cls)
    if declared is UNRESOLVED or declared is Any:
        return []
    if spec.output is None:
        if declared is None or declared is type(None):
            return []
        actual_text = "no output node (a workflow without one has no single output value)"
    else:
        actual = node_ok_type(spec.output)
        if actual is UNRESOLVED or is_compatible(actual, declared):
            return []
        actual_text = f"{type_name(actual)} from {describe(spec.output)}"
    error = spec_error(
        _E.WORKFLOW_OUTPUT_TYPE_MISMATCH,
        f"{cls.__qualname__} declares WorkflowDefinition[{type_name(declared)}] but its "
        f"spec produces {actual_text}",
        help_text="change the class's type argument or the output node "
        "(WorkflowDefinition[None] for a workflow without output)",
    )
    location = location_of(cls)
    return [error.with_location(location) if location is not None else error]


# -- start (§4.2, §12.1 step 3) -----------------------------------------------------------


def resolve_for_start(spec: WorkflowSpec[Any], app: Horsies | None) -> list[HorsiesError]:
    """Re-check a spec about to start: HRS-016, HRS-025, HRS-018, and queues and
    priorities of nodes `app.workflow` did not place (HRS-014/HRS-015), resolved
    through `app` with the rules of app.workflow.

    With no errors, every `TaskNode` of the spec has its `queue` and `priority`.
    Nothing is changed when errors are returned.
    """
    from horsies.workflows.placement import place

    errors = definition_key_errors(spec) + output_type_errors(spec)
    if app is None and any(isinstance(node, SubWorkflowNode) for node in spec.tasks):
        errors.append(spec_error(
            _E.WORKFLOW_SUBWORKFLOW_APP_MISSING,
            f"workflow '{spec.name}' has subworkflows but the broker has no app to build them",
            help_text="start it through app.workflow(...).start() or a broker created by an app",
        ))
    placed: list[tuple[TaskNode[Any], tuple[str, int]]] = []
    for node in spec.tasks:
        if not isinstance(node, TaskNode) or node.placed:
            continue
        if app is None:
            errors += _unplaceable(node)
            continue
        found = place(node, app)
        if isinstance(found, HorsiesError):
            errors.append(node_error(_E.WORKFLOW_UNRESOLVED_QUEUE, node,
                                     "queue cannot be resolved", found.message, *found.notes))
        else:
            placed.append((node, found))
    if not errors:
        for node, (queue, priority) in placed:
            node._place(queue, priority)
    return errors


def _unplaceable(node: TaskNode[Any]) -> list[HorsiesError]:
    """Without an app only explicit overrides can stand; anything missing is an error."""
    reason = "the spec was built without app.workflow() and the broker has no app"
    if node.queue is None:
        return [node_error(_E.WORKFLOW_UNRESOLVED_QUEUE, node, "queue cannot be resolved",
                           reason)]
    if node.priority is None:
        return [node_error(_E.WORKFLOW_UNRESOLVED_PRIORITY, node,
                           "priority cannot be resolved", reason)]
    return []
