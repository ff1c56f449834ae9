"""`SuccessPolicy` and `SuccessCase`: partial-success rules (workflows.md §9.2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from horsies.workflows.nodes import AnyNode, Freezable, TaskNode

__all__ = ["SuccessCase", "SuccessPolicy"]


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
