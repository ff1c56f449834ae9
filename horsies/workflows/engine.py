"""The workflow engine (workflows.md §16): it moves workflows forward inside
the transaction of whoever changed them.

It has no process of its own. The worker calls `tasks_ended` in the cycle
that finalizes a node's task and `tasks_started` after a cycle started some;
the start code calls `enqueue_roots`; the reaper calls `recover`. Every entry
takes an open connection inside a transaction and locks the workflow rows it
changes first, in id order.

Advancing after a node ends touches that node's dependents only: each node
row counts how its dependencies ended (`deps_*`, `ctx_waiting`), the
readiness rule reads those counts, and `nodes_left` on the workflow says
when the completion check has something to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from horsies._speedups import Readiness, evaluate_readiness_many
from horsies.codec import dumps_json
from horsies.codes import OperationalErrorCode, OutcomeCode, RetrievalCode
from horsies.sql import queries
from horsies.states import WorkflowTaskStatus
from horsies.task_result import TaskError, TaskResult
from horsies.tasks.ids import new_task_ids
from horsies.tasks.send_types import enqueue_sha
from horsies.tasks.waiting import decode_result_text
from horsies.workflows import wire
from horsies.workflows.outcome import evaluate_outcome

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = [
    "Locked",
    "Step",
    "enqueue_roots",
    "error_json",
    "error_of",
    "failure_json",
    "recover",
    "stop_claims",
    "stop_tasks",
    "tasks_ended",
    "tasks_started",
]

log = logging.getLogger("horsies.workflow")

Conn = psycopg.AsyncConnection[Any]
Locked = dict[str, tuple[str, str]]  # workflow id -> (status, on_error)
NodeRef = tuple[str, int]  # (workflow id, task index)
# A node made terminal: (workflow id, index, status, stored result, recorded error).
Settled = tuple[str, int, str, str | None, str | None]

_JOIN = {"all": 0, "any": 1, "quorum": 2}
_SKIP = (Readiness.SKIP_IMPOSSIBLE, Readiness.SKIP_UPSTREAM)
_RECOVERY_BATCH = 500


def _encode(value: TaskResult[Any, TaskError]) -> str:
    encoded = dumps_json(value)
    if encoded.is_err():  # only the engine's own values reach here
        raise RuntimeError(f"workflow engine could not encode a result: {encoded.err_value}")
    return encoded.ok_value


def failure_json(code: Any, message: str, **data: Any) -> str:
    """An encoded error TaskResult made by the engine."""
    return _encode(TaskResult(err=TaskError(error_code=code, message=message, data=data or None)))



def error_json(code: Any, message: str, **data: Any) -> str:
    """An encoded TaskError made by the engine, as an `error` column stores one."""
    text = error_of(failure_json(code, message, **data))
    assert text is not None  # failure_json always holds an error
    return text


def error_of(result_text: str | None) -> str | None:
    """The encoded TaskError inside an encoded error TaskResult."""
    if result_text is None:
        return None
    try:
        err = orjson.loads(result_text).get("err")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return None if err is None else orjson.dumps(err).decode()


# -- entry points ---------------------------------------------------------------


async def tasks_ended(conn: Conn, task_ids: Sequence[str], *, app: Horsies | None = None,
                      check: bool = False) -> int:
    """Node completion (§16.3) for tasks that reached a terminal state; returns
    how many nodes it moved. Task ids that are not workflow nodes cost one
    indexed lookup. With `check`, stored results are decoded first and an
    unusable one is replaced by a synthesized error (recovery, §17 case 5).

    Tasks that went back to PENDING instead (a retry, a run given back) are
    stopped here when their workflow was paused or cancelled meanwhile."""
    if not task_ids:
        return 0
    cur = await conn.execute(queries["wf_lock_for_tasks"], {"ids": list(task_ids)})
    locked: Locked = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
    if not locked:
        return 0
    if any(state[0] in ("PAUSED", "CANCELLED") for state in locked.values()):
        await stop_tasks(conn, locked, task_ids)
    cur = await conn.execute(queries["wf_nodes_of_tasks"], {"ids": list(task_ids)})
    rows = await cur.fetchall()
    step = Step(conn, locked, app)
    await step.settle([(wf, idx, *_node_outcome(task_id, status, result, check), None)
                       for wf, idx, task_id, status, result in rows],
                      expected=("ENQUEUED", "RUNNING"))
    await step.advance()
    return len(rows)


async def stop_claims(conn: Conn, task_ids: Sequence[str]) -> set[str]:
    """Claims a worker could not confirm because their workflow stopped: T10
    for them (workers.md §6.2 checks 2-3); returns the ids stopped."""
    cur = await conn.execute(queries["wf_lock_for_tasks"], {"ids": list(task_ids)})
    locked: Locked = {row[0]: (row[1], row[2]) for row in await cur.fetchall()
                      if row[1] in ("PAUSED", "CANCELLED")}
    if not locked:
        return set()
    cur = await conn.execute(queries["wf_tasks_stranded"], {"ids": list(task_ids)})
    stranded = {row[0] for row in await cur.fetchall()}
    await stop_tasks(conn, locked, sorted(stranded))
    return stranded


async def stop_tasks(conn: Conn, locked: Locked, task_ids: Sequence[str] | None = None) -> int:
    """T10 for unstarted tasks of the paused and cancelled workflows in `locked`
    (all their node tasks, or only `task_ids`): a paused workflow's node goes
    back to READY for resume to enqueue afresh, a cancelled one's is SKIPPED."""
    moved = 0
    for status, node_status in (("PAUSED", "READY"), ("CANCELLED", "SKIPPED")):
        ids = [wf for wf, state in locked.items() if state[0] == status]
        if ids:
            cur = await conn.execute(queries["wf_stop_tasks"], {
                "wf": ids, "tasks": None if task_ids is None else list(task_ids),
                "node_status": node_status})
            row = await cur.fetchone()
            moved += int(row[0]) if row else 0
    return moved


async def tasks_started(conn: Conn, task_ids: Sequence[str]) -> None:
    """A worker started these tasks: their nodes become RUNNING (§16.5, last paragraph)."""
    if task_ids:
        await conn.execute(queries["wf_nodes_started"], {"ids": list(task_ids)})


async def enqueue_roots(step: Step, workflow_id: str, on_error: str, roots: list[int],
                        conditions: dict[int, tuple[str | None, str | None]] | None = None
                        ) -> None:
    """Start (§16.2, §10.3 step 6): the roots of a workflow just inserted, in the
    same transaction; the caller advances `step`. A root's join is satisfied at
    once, so its conditions (`conditions`: index -> refs) are evaluated now."""
    step.locked[workflow_id] = ("RUNNING", on_error)
    step.touched.add(workflow_id)
    run = [index for index in roots if index not in (conditions or {})]
    if conditions:
        from horsies.workflows.conditions import judge

        verdict = await judge(step, [(workflow_id, index, *refs)
                                     for index, refs in sorted(conditions.items())])
        await step.settle(verdict.settled, expected=("READY",))
        run += sorted(index for wf, index in verdict.run)
    await step.enqueue([(workflow_id, index) for index in run])


async def recover(conn: Conn, app: Horsies | None = None) -> int:
    """The reaper's repairs (§17, cases 1 to 6); returns the nodes touched."""
    touched = 0
    cur = await conn.execute(queries["wf_recover_tasks"], {"limit": _RECOVERY_BATCH})
    ended = [row[0] for row in await cur.fetchall()]
    if ended:
        touched += await tasks_ended(conn, ended, app=app, check=True)
    touched += await _recover_nodes(conn, app)
    cur = await conn.execute(queries["wf_recover_children"],
                             {"ids": None, "limit": _RECOVERY_BATCH})
    children = [row[0] for row in await cur.fetchall()]
    if children:
        step = await locked_step(conn, children, app)
        for child in children:
            await step.tell_parent(child)
        await step.advance()
        touched += len(children)
    cur = await conn.execute(queries["wf_recover_finished"], {"limit": _RECOVERY_BATCH})
    finished = [row[0] for row in await cur.fetchall()]
    if finished:
        step = await locked_step(conn, finished, app)
        step.touched.update(finished)
        await step.advance()
    return touched


async def _recover_nodes(conn: Conn, app: Horsies | None) -> int:
    cur = await conn.execute(queries["wf_recover_pending"], {"limit": _RECOVERY_BATCH})
    pending = await cur.fetchall()
    cur = await conn.execute(queries["wf_recover_ready"], {"limit": _RECOVERY_BATCH})
    ready = [(row[0], row[1]) for row in await cur.fetchall()]
    if not pending and not ready:
        return 0
    step = await locked_step(conn, {row[0] for row in pending} | {wf for wf, _ in ready}, app)
    running = [row for row in pending if step.running(row[0])]
    await step.decide(running)
    await step.enqueue([ref for ref in ready if step.running(ref[0])])
    await step.advance()
    return len(running) + len(ready)


async def locked_step(conn: Conn, workflow_ids: Iterable[str], app: Horsies | None) -> Step:
    """A step over these workflows, locked in id order."""
    cur = await conn.execute(queries["wf_lock"], {"ids": sorted(workflow_ids)})
    return Step(conn, {row[0]: (row[1], row[2]) for row in await cur.fetchall()}, app)


def _node_outcome(task_id: str, task_status: str, result: str | None, check: bool
                  ) -> tuple[str, str]:
    """The node status and stored result for a task that ended (§16.3, §17 case 5)."""
    if task_status == "COMPLETED" and result is not None:
        if not check or not isinstance(decode_result_text(result), str):
            return "COMPLETED", result
    elif task_status == "FAILED" and result is not None:
        decoded = decode_result_text(result)
        if not check or not isinstance(decoded, str):
            return "FAILED", result
    data = {"task_id": task_id, "task_status": task_status, "recovery": "case_1_7"}
    if task_status == "CANCELLED":
        return "FAILED", failure_json(OutcomeCode.TASK_CANCELLED,
                                  f"task {task_id} was cancelled", **data)
    if task_status == "EXPIRED":
        return "FAILED", failure_json(OutcomeCode.TASK_EXPIRED,
                                  f"task {task_id} expired before it ran", **data)
    if task_status == "COMPLETED" and result is None:
        return "FAILED", failure_json(RetrievalCode.RESULT_NOT_AVAILABLE,
                                  f"task {task_id} completed without a stored result", **data)
    return "FAILED", failure_json(OperationalErrorCode.WORKER_CRASHED,
                              f"task {task_id} ended {task_status} without a usable result",
                              **data)


# -- one transaction's progress ---------------------------------------------------


class Step:
    """What one transaction changes: nodes made terminal are propagated
    breadth-first (§16.6), then touched workflows are checked for completion;
    a child that finishes tells its parent node, which propagates in turn."""

    def __init__(self, conn: Conn, locked: Locked, app: Horsies | None = None) -> None:
        self.conn = conn
        self.locked = locked
        self.app = app
        self.frontier: list[tuple[str, int, str, list[int]]] = []
        self.touched: set[str] = set()

    def running(self, workflow_id: str) -> bool:
        state = self.locked.get(workflow_id)
        return state is not None and state[0] == "RUNNING"

    async def settle(self, items: Sequence[Settled], expected: Sequence[str]) -> None:
        """Make nodes terminal; failures meet `on_error` (§8) before anything propagates."""
        if not items:
            return
        cur = await self.conn.execute(queries["wf_nodes_settle"], {
            "wf": [i[0] for i in items], "idx": [i[1] for i in items],
            "status": [i[2] for i in items], "result": [i[3] for i in items],
            "error": [i[4] for i in items], "expected": list(expected)})
        done = await cur.fetchall()
        results = {(i[0], i[1]): i[3] for i in items}
        await self._on_error([(wf, idx, results[(wf, idx)])
                              for wf, idx, status, _ in sorted(done, key=lambda r: r[1])
                              if status == "FAILED"])
        for wf, idx, status, dependents in done:
            self.touched.add(wf)
            if self.running(wf):
                self.frontier.append((wf, idx, status, dependents))

    async def _on_error(self, failed: list[tuple[str, int, str | None]]) -> None:
        first: dict[str, str] = {}
        for wf, _, result in failed:
            error = error_of(result)
            if error is not None and self.running(wf):
                first.setdefault(wf, error)
        if not first:
            return
        for policy, name in (("fail", "wf_error_set"), ("pause", "wf_pause_on_error")):
            chosen = {wf: e for wf, e in first.items() if self.locked[wf][1] == policy}
            if chosen:
                await self.conn.execute(queries[name], {"wf": list(chosen),
                                                        "error": list(chosen.values())})
        paused = [wf for wf in first if self.locked[wf][1] == "pause"]
        for wf in paused:
            self.locked[wf] = ("PAUSED", "pause")
            log.info("Workflow %s paused: a node failed (on_error=pause)", wf)
        if paused:
            # Tasks of the paused workflow that have not started must not start (§13.5).
            await stop_tasks(self.conn, {wf: self.locked[wf] for wf in paused})

    async def advance(self) -> None:
        while True:
            await self._propagate()
            await self._finish()
            if not self.frontier:
                return

    async def _propagate(self) -> None:
        while self.frontier:
            frontier, self.frontier = self.frontier, []
            edges = [(wf, target, idx, status) for wf, idx, status, dependents in frontier
                     if self.running(wf) for target in dependents]
            if not edges:
                continue
            cur = await self.conn.execute(queries["wf_bump_dependents"], {
                "wf": [e[0] for e in edges], "target": [e[1] for e in edges],
                "source": [e[2] for e in edges], "status": [e[3] for e in edges]})
            await self.decide([row for row in await cur.fetchall()
                               if row[2] == "PENDING" and self.running(row[0])])

    async def decide(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """The readiness rule (§16.4) over PENDING nodes, acted on (§16.5); a node
        that may run meets its conditions first (§7)."""
        if not rows:
            return
        verdicts = evaluate_readiness_many(
            [_JOIN[r[3]] for r in rows], [r[4] for r in rows], [bool(r[5]) for r in rows],
            [r[6] for r in rows], [r[7] for r in rows], [r[8] for r in rows],
            [r[9] for r in rows], [max(0, r[10]) for r in rows])
        skip: list[Settled] = [(r[0], r[1], "SKIPPED", None, None)
                               for r, v in zip(rows, verdicts, strict=True) if v in _SKIP]
        run = [r for r, v in zip(rows, verdicts, strict=True) if v == Readiness.RUN]
        guarded = [r for r in run if r[11] or r[12]]
        if guarded:
            from horsies.workflows.conditions import judge

            verdict = await judge(self, [(r[0], r[1], r[11], r[12]) for r in guarded])
            skip += verdict.settled
            run = [r for r in run if not (r[11] or r[12]) or (r[0], r[1]) in verdict.run]
        await self.settle(skip, expected=("PENDING",))
        await self.enqueue([(r[0], r[1]) for r in run])

    async def enqueue(self, refs: Sequence[NodeRef]) -> None:
        """PENDING/READY -> ENQUEUED with a task row each (§16.5 steps 1-5), or a
        child workflow started for a subworkflow node (§10.3)."""
        if not refs:
            return
        cur = await self.conn.execute(queries["wf_nodes_enqueue"], {
            "wf": [r[0] for r in refs], "idx": [r[1] for r in refs]})
        nodes = await cur.fetchall()
        if not nodes:
            return
        inputs = await self.results_of(
            (node[0], int(i)) for node in nodes
            for i in [*(node[8] or {}).values(), *(node[9] or ())])
        rows: list[_TaskRow] = []
        failed: list[Settled] = []
        children = []
        for node in nodes:
            if node[11]:
                children.append(node)
                continue
            built = _task_row(node, inputs)
            if isinstance(built, str):
                failed.append((node[0], node[1], "FAILED", built, None))
            else:
                rows.append(built)
        if rows:
            await self._insert(rows)
        if children:
            from horsies.workflows.children import start_children

            failed += await start_children(self, children, inputs)
        await self.settle(failed, expected=("ENQUEUED",))

    async def results_of(self, refs: Iterable[NodeRef]) -> dict[NodeRef, tuple[Any, ...]]:
        """Status and stored result of these nodes (what nodes about to run read)."""
        wanted = sorted(set(refs))
        if not wanted:
            return {}
        cur = await self.conn.execute(queries["wf_node_results"], {
            "wf": [r[0] for r in wanted], "idx": [r[1] for r in wanted]})
        return {(row[0], row[1]): row for row in await cur.fetchall()}

    async def _insert(self, rows: list[_TaskRow]) -> None:
        ids = new_task_ids(len(rows))
        await self.conn.execute(queries["wf_tasks_insert"], {
            "ids": ids, "wf": [r.workflow_id for r in rows], "idx": [r.index for r in rows],
            "names": [r.task_name for r in rows], "queues": [r.queue for r in rows],
            "priorities": [r.priority for r in rows], "kwargs": [r.kwargs for r in rows],
            "good_until": [r.good_until for r in rows], "options": [r.options for r in rows],
            "max_retries": [r.max_retries for r in rows], "shas": [r.sha for r in rows]})

    async def _finish(self) -> None:
        """Completion check (§16.7) of every touched workflow whose nodes all ended;
        a child that finished tells its parent node (§10.1)."""
        if not self.touched:
            return
        cur = await self.conn.execute(queries["wf_finishable"], {"ids": sorted(self.touched)})
        self.touched.clear()
        for (wf,) in await cur.fetchall():
            self.locked[wf] = ("DONE", self.locked.get(wf, ("", "fail"))[1])
            if await _complete(self.conn, wf):
                await self.tell_parent(wf)

    async def tell_parent(self, child_id: str) -> None:
        """A child that ended moves its parent node (§10.1, §10.5)."""
        from horsies.workflows.children import parent_update

        await parent_update(self, child_id)


# -- building a node's task row ------------------------------------------------------


class _TaskRow:
    __slots__ = (
        "good_until",
        "index",
        "kwargs",
        "max_retries",
        "options",
        "priority",
        "queue",
        "sha",
        "task_name",
        "workflow_id",
    )

    def __init__(self, workflow_id: str, index: int, task_name: str, queue: str,
                 priority: int, kwargs: str, options: str | None) -> None:
        self.workflow_id, self.index, self.task_name = workflow_id, index, task_name
        self.queue, self.priority, self.kwargs, self.options = queue, priority, kwargs, options
        parsed = orjson.loads(options) if options else {}
        until = parsed.get("good_until")
        self.good_until = datetime.fromisoformat(until) if until else None
        policy = parsed.get("retry_policy")
        self.max_retries = int(policy.get("max_retries", 0)) if policy else 0
        self.sha = enqueue_sha(task_name=task_name, queue_name=queue, priority=priority,
                               args_json=None, kwargs_json=kwargs,
                               sent_at=datetime.now(UTC), good_until=self.good_until,
                               enqueue_delay_seconds=None, task_options=options)


def source_text(source: tuple[Any, ...] | None, index: int) -> str | None:
    """What a dependency passes on (§5.2): its stored result, the skip sentinel,
    or nothing while it has not ended (any/quorum joins)."""
    if source is None:
        return None
    status, result = source[3], source[4]
    if status == "SKIPPED":
        return wire.skipped_result_json(index)
    if status in ("COMPLETED", "FAILED"):
        return result if result is not None else failure_json(
            OperationalErrorCode.RESULT_DESERIALIZATION_ERROR,
            f"dependency {index} has no stored result")
    return None


def _task_row(node: tuple[Any, ...], inputs: dict[NodeRef, tuple[Any, ...]]
              ) -> _TaskRow | str:
    """The task row of an enqueued node, or the stored result of its failure."""
    wf, index, node_id, task_name, queue, priority, static, options, args_from, ctx_indices = (
        node[:10])
    injected: dict[str, dict[str, Any]] = {}
    for param, source_index in (args_from or {}).items():
        text = source_text(inputs.get((wf, int(source_index))), int(source_index))
        if text is not None:
            injected[param] = wire.taskresult_arg(text)
    ctx = None
    if ctx_indices:
        results: dict[str, str] = {}
        for i in ctx_indices:
            source = inputs.get((wf, i))
            text = source_text(source, i)
            if source is not None and text is not None:
                results[source[2]] = text
        ctx = wire.ctx_envelope(wf, index, task_name, results, None)
    try:
        kwargs = wire.node_kwargs_json(static, injected, ctx,
                                       wire.meta_envelope(wf, index, task_name))
    except wire.KwargsConflictError as exc:
        return failure_json(OperationalErrorCode.WORKFLOW_ENQUEUE_FAILED,
                        f"node {node_id!r} could not be enqueued: {exc}")
    except (ValueError, TypeError) as exc:
        return failure_json(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                        f"kwargs of node {node_id!r} could not be built: {exc}")
    return _TaskRow(wf, index, task_name, queue, priority, kwargs, options)


# -- completion ------------------------------------------------------------------------


async def _complete(conn: Conn, workflow_id: str) -> bool:
    """Finalize one workflow (§16.7); True when a parent node waits for it."""
    cur = await conn.execute(queries["wf_outcome_inputs"], {"id": workflow_id})
    found = await cur.fetchone()
    if found is None:
        return False
    output, policy, has_error, statuses = found
    cases = None
    if policy:
        cases = [case["required_indices"] for case in policy.get("cases", ())]
    status, error_index, case_not_met = evaluate_outcome(
        [WorkflowTaskStatus(s) for s in statuses], has_error, cases)
    result = error = None
    if status == "COMPLETED":
        result = await _workflow_result(conn, workflow_id, output)
    elif error_index is not None:
        cur = await conn.execute(queries["wf_node_results"], {"wf": [workflow_id],
                                                             "idx": [error_index]})
        row = await cur.fetchone()
        error = error_of(row[4]) if row is not None else None
    elif case_not_met:
        error = error_json(OutcomeCode.WORKFLOW_SUCCESS_CASE_NOT_MET,
                           "No success case was satisfied")
    cur = await conn.execute(queries["wf_finish"], {"id": workflow_id, "status": status,
                                                   "result": result, "error": error})
    finished = await cur.fetchone()
    log.info("Workflow %s %s", workflow_id, status)
    return bool(finished and finished[0])


async def _workflow_result(conn: Conn, workflow_id: str, output: int | None) -> str:
    """§9.3: the output node's result as stored, or every sink's result by node id."""
    cur = await conn.execute(queries["wf_result_nodes"], {"id": workflow_id, "output": output})
    rows = await cur.fetchall()
    if output is not None:
        for index, _node_id, status, stored in rows:
            if status == "SKIPPED" or stored is None:
                return wire.skipped_result_json(index)
            return str(stored)
        return wire.skipped_result_json(output)
    sinks: dict[str, TaskResult[Any, TaskError] | None] = {}
    for _index, node_id, _status, stored in rows:
        decoded = decode_result_text(stored) if stored is not None else None
        if isinstance(decoded, str):
            decoded = TaskResult(err=TaskError(
                error_code=OperationalErrorCode.RESULT_DESERIALIZATION_ERROR, message=decoded))
        sinks[node_id] = decoded
    return _encode(TaskResult(ok=sinks))
