"""Workflow validation errors that name their node and point at its source."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from horsies.errors import ErrorCode, SourceLocation, WorkflowValidationError

if TYPE_CHECKING:
    from horsies.workflows.nodes import AnyNode

__all__ = ["describe", "location_of", "node_error", "spec_error"]


def location_of(obj: Any) -> SourceLocation | None:
    """Where a function or class is defined, or None when that cannot be known."""
    target = getattr(obj, "__wrapped__", obj)
    if inspect.isclass(target):
        try:
            file = inspect.getsourcefile(target)
            _, line = inspect.getsourcelines(target)
        except (OSError, TypeError):
            return None
        return SourceLocation(file=file, line=line) if file else None
    return SourceLocation.from_function(target)


def describe(node: AnyNode) -> str:
    """`node 'fetch' (task 'download_feed')`, or by index while the id is unknown."""
    from horsies.workflows.nodes import TaskNode

    kind = "task" if isinstance(node, TaskNode) else "workflow"
    if node.node_id is not None:
        ident = f"'{node.node_id}'"
    else:
        ident = f"#{node.index}" if node.index is not None else "(unplaced)"
    return f"node {ident} ({kind} '{node.name}')"


def _source_of(node: AnyNode) -> Any:
    from horsies.workflows.nodes import TaskNode

    return node.fn if isinstance(node, TaskNode) else node.workflow_def


def node_error(
    code: ErrorCode,
    node: AnyNode,
    message: str,
    *notes: str,
    help_text: str | None = None,
) -> WorkflowValidationError:
    """An error about one node: the message names it, the location is its function."""
    error = WorkflowValidationError(
        f"{describe(node)}: {message}", code=code, notes=list(notes), help_text=help_text
    )
    location = location_of(_source_of(node))
    return error.with_location(location) if location is not None else error


def spec_error(
    code: ErrorCode, message: str, *notes: str, help_text: str | None = None
) -> WorkflowValidationError:
    """An error about the spec as a whole; its location is the caller's code."""
    return WorkflowValidationError(message, code=code, notes=list(notes), help_text=help_text)
