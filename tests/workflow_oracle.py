"""The in-memory workflow simulation of workflows.md §16.8.

Nodes carry `deps`, `join`, `min_success`, `allow_failed_deps` and `ctx_from`;
`simulate` plays "node i finished ok/err" events through the rules of
§16.3–§16.7 (on_error="fail") and returns every node's final status and the
workflow's. The readiness rule is a parameter, so the same simulation runs
against both dag_ready twins and against the spec's reference; the outcome is
the spec's §9.1/§9.2 rule written out here, independently of the engine.
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from horsies.states import WorkflowTaskStatus as S

Readiness = Callable[[int, int, bool, int, int, int, int, int], int]
JOINS = {"all": 0, "any": 1, "quorum": 2}
TERMINAL = {S.COMPLETED, S.FAILED, S.SKIPPED}


@dataclasses.dataclass(frozen=True)
class OracleNode:
    deps: tuple[int, ...] = ()
    join: str = "all"
    min_success: int | None = None
    allow_failed_deps: bool = False
    ctx_from: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class OracleRun:
    statuses: tuple[S, ...]
    status: str  # "COMPLETED" or "FAILED"
    error_index: int | None  # the FAILED node whose error becomes the workflow's
    ran: tuple[int, ...]  # nodes that executed, in the order they were enqueued


def reference(join: int, min_success: int, allow_failed_deps: bool, total: int,
              completed: int, failed: int, skipped: int, ctx_pending: int) -> int:
    """workflows.md §16.4's normative rule (domain checks left to the twins' tests)."""
    finished = completed + failed + skipped
    if join == 0:
        if finished < total or ctx_pending > 0:
            return 0
        return 3 if (failed + skipped) > 0 and not allow_failed_deps else 1
    need = 1 if join == 1 else max(min_success, 1)
    if completed >= need:
        return 0 if ctx_pending > 0 else 1
    return 2 if completed + (total - finished) < need else 0


def simulate(nodes: Sequence[OracleNode], outcomes: Mapping[int, bool], *,
             readiness: Readiness = reference,
             success_cases: Sequence[Sequence[int]] | None = None,
             order: random.Random | None = None) -> OracleRun:
    """Run the workflow to its end; `order` shuffles which running node finishes next."""
    status = [S.PENDING] * len(nodes)
    dependents: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for d in node.deps:
            dependents[d].append(i)
    running: list[int] = []
    ran: list[int] = []

    def start(i: int) -> None:
        status[i] = S.ENQUEUED
        running.append(i)
        ran.append(i)

    def propagate(origin: int) -> None:
        queue = deque([origin])
        while queue:
            for i in sorted(dependents[queue.popleft()]):
                if status[i] != S.PENDING:
                    continue
                decision = _decide(nodes[i], status, readiness)
                if decision == 1:
                    start(i)
                elif decision in (2, 3):
                    status[i] = S.SKIPPED
                    queue.append(i)

    for i, node in enumerate(nodes):
        if not node.deps:
            start(i)
    while running:
        pick = order.randrange(len(running)) if order is not None else 0
        i = running.pop(pick)
        status[i] = S.COMPLETED if outcomes.get(i, True) else S.FAILED
        propagate(i)
    assert all(s in TERMINAL for s in status), status
    final, error_index = outcome(status, success_cases)
    return OracleRun(tuple(status), final, error_index, tuple(ran))


def _decide(node: OracleNode, status: Sequence[S], readiness: Readiness) -> int:
    deps = [status[d] for d in node.deps]
    ctx_pending = sum(status[c] not in TERMINAL for c in node.ctx_from)
    return readiness(JOINS[node.join], node.min_success or 0, node.allow_failed_deps,
                     len(deps), deps.count(S.COMPLETED), deps.count(S.FAILED),
                     deps.count(S.SKIPPED), ctx_pending)


def outcome(status: Sequence[S], success_cases: Sequence[Sequence[int]] | None
            ) -> tuple[str, int | None]:
    """§9.1 and §9.2, with no stored workflow error before the end."""
    if success_cases is None:
        failed = [i for i, s in enumerate(status) if s == S.FAILED]
        return ("FAILED", failed[0]) if failed else ("COMPLETED", None)
    if any(all(status[i] == S.COMPLETED for i in case) for case in success_cases):
        return "COMPLETED", None
    required = sorted({i for case in success_cases for i in case})
    failed = [i for i in required if status[i] == S.FAILED]
    return "FAILED", failed[0] if failed else None


def random_dag(rng: random.Random, size: int, *, fail_rate: float = 0.25
               ) -> tuple[list[OracleNode], dict[int, bool]]:
    """A random DAG of `size` nodes (edges point backwards) and which nodes fail."""
    nodes: list[OracleNode] = []
    for i in range(size):
        deps = tuple(sorted(rng.sample(range(i), k=min(i, rng.randint(0, 3))))) if i else ()
        join = rng.choice(["all", "all", "any", "quorum"]) if deps else "all"
        ctx = tuple(d for d in deps if rng.random() < 0.3)
        nodes.append(OracleNode(
            deps=deps, join=join,
            min_success=rng.randint(1, len(deps)) if join == "quorum" else None,
            allow_failed_deps=join == "all" and rng.random() < 0.3,
            ctx_from=ctx))
    return nodes, {i: rng.random() >= fail_rate for i in range(size)}


def mixed_dag(rng: random.Random, size: int, *, fail_rate: float = 0.05
              ) -> tuple[list[OracleNode], dict[int, bool]]:
    """A DAG of `size` nodes made of chains, fan-outs from recent nodes and joins
    of 2-5 recent nodes (all, any or quorum), with a few extra roots; edges stay
    local so that the graph is deep as well as wide."""
    nodes: list[OracleNode] = []
    for i in range(size):
        kind = rng.random()
        if i < 3 or kind < 0.06:
            nodes.append(OracleNode())
        elif kind < 0.45:
            nodes.append(OracleNode(deps=(i - 1,)))
        elif kind < 0.70:
            nodes.append(OracleNode(deps=(rng.randrange(max(0, i - 25), i),)))
        else:
            recent = range(max(0, i - 40), i)
            deps = tuple(sorted(rng.sample(recent, k=min(len(recent), rng.randint(2, 5)))))
            join = rng.choice(["all", "all", "any", "quorum"])
            nodes.append(OracleNode(
                deps=deps, join=join,
                min_success=rng.randint(1, len(deps)) if join == "quorum" else None,
                allow_failed_deps=join == "all" and rng.random() < 0.3,
                ctx_from=tuple(d for d in deps if rng.random() < 0.3)))
    return nodes, {i: rng.random() >= fail_rate for i in range(size)}
