"""How a spec takes the caller's nodes: copy, rewire, freeze, write back (workflows.md §3.5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from horsies.workflows.nodes import AnyNode, SubWorkflowNode, TaskNode
from horsies.workflows.policy import SuccessCase, SuccessPolicy

__all__ = ["Graph", "copy_graph", "freeze_node", "write_back"]



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


def freeze_node(node: AnyNode) -> None:
    node.waits_for = tuple(node.waits_for)
    node.args_from = _read_only(node.args_from)
    if node.workflow_ctx_from is not None:
        node.workflow_ctx_from = tuple(node.workflow_ctx_from)
    node._freeze()


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def write_back(originals: Sequence[AnyNode], copies: Sequence[AnyNode]) -> None:
    """Give the caller's (unfrozen) nodes their index and id, so task bodies can
    look results up with the original node objects (§3.5)."""
    for original, clone in zip(originals, copies, strict=True):
        if original.frozen:
            continue
        object.__setattr__(original, "_index", clone.index)
        object.__setattr__(original, "node_id", clone.node_id)
        object.__setattr__(original, "_auto_id", clone._auto_id)
