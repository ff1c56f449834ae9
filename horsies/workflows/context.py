"""Values the engine hands to task bodies: `NodeKey`, `WorkflowMeta`,
`WorkflowContext` (workflows.md §3.4, §5.3, §5.4, §10.4)."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

__all__ = ["NodeKey"]

OkT = TypeVar("OkT")


class NodeKey(msgspec.Struct, Generic[OkT], frozen=True):
    """A typed reference to a node by its id, for lookups without the node object."""

    node_id: str
