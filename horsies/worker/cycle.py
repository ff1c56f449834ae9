"""The cycle (runs.md §2): everything ready is written in one statement and one
durable commit.

A cycle takes the results the children sent since the last one, the deaths
and the stops it learned of, and the top-ups children need, and writes them
with `worker_cycle`: endings (T11-T14), returns of unstarted tasks (T15),
starts of runs (or confirmations of claims where a cap counts) and the marks
that bound what each child may start. After the commit it hands the new runs
to their children and raises their limits. While one cycle is in flight the
next one's work accumulates, so cycles grow with the load and the number of
commits does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from horsies.db.broker import is_transient
from horsies.sql import cycle_statement, queries
from horsies.worker import protocol
from horsies.worker.children import Child, ChildPool, Handed
from horsies.worker.claimer import ReadyQueue, ReadyTask
from horsies.worker.connections import Connections
from horsies.worker.endings import (
    WORKER_CRASHED,
    Statement,
    crash_result_json,
    retry_after,
    storable,
    unstorable_result,
)
from horsies.worker.runs import RunSizing

if TYPE_CHECKING:
    from horsies.app import Horsies

log = logging.getLogger("horsies.worker")

# Columns of a handed-out task, as `worker_cycle` returns it.
_PID, _SEQ, _ID, _NAME, _ARGS, _KWARGS, _QUEUE, _RETRIES, _MAX_RETRIES, _OPTIONS = range(1, 11)

# Every task row of a workflow node carries this key in its kwargs
# (workflows.md §5.5): a substring test tells the cycle which endings must
# advance a workflow, at no cost to tasks that are not nodes.
_NODE_MARK = '"__horsies_workflow_meta__"'


def _is_node(row: Handed) -> bool:
    kwargs = row[_KWARGS]
    return kwargs is not None and _NODE_MARK in kwargs


class Cycle:
    """Turns what the children report into cycles of one statement each."""

    def __init__(self, conns: Connections, pool: ChildPool, sizing: RunSizing, *,
                 worker_id: str, hostname: str, queues: list[str], allowance: int,
                 ready: ReadyQueue | None, on_retry: Callable[[str, str, datetime], None],
                 on_capacity: Callable[[], None], forced: Callable[[], bool],
                 app: Horsies | None = None) -> None:
        self.conns = conns
        self.app = app  # builds child workflows when nodes end here
        self.pool = pool
        self.sizing = sizing
        self.worker_id = worker_id
        self.hostname = hostname
        self.queues = queues
        self.allowance = allowance
        self.ready = ready  # claims to confirm where a cap counts; None: runs
        self.on_retry = on_retry
        self.on_capacity = on_capacity
        self.forced = forced
        self.results: list[tuple[Child, list[protocol.Finished]]] = []
        self.deaths: list[Child] = []
        self.stalled: set[Child] = set()
        self.wake = asyncio.Event()
        self.starting = True  # top-ups allowed (off once shutdown begins)
        self.maybe_work = True  # claimable rows may exist (a notice, a poll, a full run)
        self.looks = 0  # how many times maybe_work was set: a later one outranks a dry cycle
        # Children named in a cycle whose commit may have landed unacknowledged.
        self.uncertain: set[Child] = set()
        self.busy = False
        # Where no cap counts, a cycle starts at most a run for every child.
        self.statement = cycle_statement(0 if ready is not None
                                         else pool.size * sizing.max_run_size)

    # -- intake (the pool's events) -------------------------------------------

    def take_results(self, child: Child, message: protocol.Results) -> None:
        if message.items:
            self.results.append((child, message.items))
        if message.waiting:
            self.stalled.add(child)
        self.wake.set()

    def take_death(self, child: Child) -> None:
        self.deaths.append(child)
        self.wake.set()

    def look_again(self) -> None:
        """Claimable rows may exist: a notification, the poll, a freed child."""
        self.looks += 1
        self.maybe_work = True
        self.wake.set()

    @property
    def holding(self) -> list[int]:
        """Children whose results wait to be written (their attempts are alive)."""
        return sorted({child.pid for child, _ in self.results})

    @property
    def pending(self) -> bool:
        """Something received is not written yet."""
        return self.busy or bool(self.results or self.deaths or self.stalled or self.uncertain)

    @property
    def running(self) -> int:
        """Tasks handed to children whose end is not written yet."""
        return sum(len(child.queue) for child in self.pool.children)

    # -- the loop ----------------------------------------------------------------

    async def loop(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self._due():
                self.busy = True
                try:
                    await self.conns.retrying("cycle", "cycle", self._attempt,
                                              give_up=self.forced)
                finally:
                    self.busy = False

    def _due(self) -> bool:
        if self.results or self.deaths or self.stalled or self.uncertain:
            return True
        if not self.starting:
            return False
        if self.ready is not None:
            return bool(len(self.ready)) and any(c.live and not c.queue for c in self.pool.children)
        return self.maybe_work and any(self._wants_run(c) for c in self.pool.children)

    def _wants_run(self, child: Child) -> bool:
        return child.live and len(child.queue) < self.sizing.size()

    async def _attempt(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.uncertain:
            await self._recover(conn)
        results, self.results = self.results, []
        deaths, self.deaths = self.deaths, []
        stalled, self.stalled = self.stalled, set()
        plan = _Plan(self, results, deaths)
        try:
            rows = await plan.execute(conn)
        except BaseException:
            # Nothing of it was applied here: the next attempt plans it again,
            # with what arrived meanwhile.
            self.results[:0] = results
            self.deaths[:0] = deaths
            self.stalled |= stalled
            self.uncertain.update(plan.starting)
            raise
        await plan.apply(rows, conn)

    async def _recover(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Hand out what an unacknowledged cycle started, before anything else."""
        children = list(self.uncertain)
        if children:
            cur = await conn.execute(queries["task_started_orphans"], {
                "worker_id": self.worker_id, "pids": [c.pid for c in children],
                "handed": [c.handed for c in children]})
            found = await cur.fetchall()
            by_pid = {c.pid: c for c in children}
            runs: dict[Child, list[Handed]] = defaultdict(list)
            for row in found:
                runs[by_pid[row[0]]].append(("S", *row, None))
            for child, handed in runs.items():
                _hand(child, handed)
            if found:
                log.info("%d task(s) started before the connection was lost handed out",
                         len(found))
        self.uncertain.clear()


class _Plan:
    """One cycle's statement: built from the worker's state without changing it,
    applied only after the commit."""

    def __init__(self, cycle: Cycle, results: list[tuple[Child, list[protocol.Finished]]],
                 deaths: list[Child]) -> None:
        self.cycle = cycle
        self.stmt = Statement()
        self.consumed: dict[Child, int] = defaultdict(int)  # rows ended per child
        self.durations: list[float] = []
        self.deaths = deaths
        self.marks: dict[Child, int] = {}
        self.starting: set[Child] = set()
        self.reserved: dict[Child, list[int]] = {}  # run positions this cycle may fill
        self.confirming: list[ReadyTask] = []
        self.nodes_ended: list[str] = []  # ended tasks that are workflow nodes
        self.looks = cycle.looks
        self._endings(results)
        self._deaths()
        self._starts()
        self._marks()

    # -- building ------------------------------------------------------------------

    def _endings(self, results: list[tuple[Child, list[protocol.Finished]]]) -> None:
        stmt, consumed = self.stmt, self.consumed
        for child, items in results:
            queue = child.queue
            offset = consumed[child]
            for seq, ok, result_json, code, message, started, duration in items:
                row = queue[offset]
                offset += 1
                if row[_SEQ] != seq:
                    raise RuntimeError(f"child {child.pid} reported run position {seq}, "
                                       f"expected {row[_SEQ]}")
                self.durations.append(duration)
                if _is_node(row):
                    self.nodes_ended.append(row[_ID])
                if ok:
                    stmt.complete(row[_ID], child.pid, result_json, started)
                else:
                    delay = retry_after(row[_ID], row[_OPTIONS], row[_RETRIES],
                                        row[_MAX_RETRIES], code)
                    stmt.fail(row[_ID], child.pid, result_json, storable(code),
                              storable(message), None, delay, started)
            consumed[child] = offset

    def _deaths(self) -> None:
        """A child's end: the task it began and did not finish crashed; the tasks
        it never began go back to PENDING (runs.md §3)."""
        cycle = self.cycle
        for child in self.deaths:
            began = child.stopped_at if child.stopped_at is not None else child.last_started
            reason = (f"Worker child process {child.pid} terminated by forced shutdown"
                      if cycle.forced() else
                      f"Worker child process {child.pid} exited with code {child.exit_code} "
                      "while running the task")
            now = datetime.now(UTC)
            for row in list(child.queue)[self.consumed[child]:]:
                if row[_SEQ] <= began:
                    if _is_node(row):
                        self.nodes_ended.append(row[_ID])
                    result = crash_result_json(reason, cycle.worker_id, cycle.hostname,
                                               child.pid, None, now)
                    delay = retry_after(row[_ID], row[_OPTIONS], row[_RETRIES],
                                        row[_MAX_RETRIES], WORKER_CRASHED)
                    self.stmt.fail(row[_ID], child.pid, result, WORKER_CRASHED, reason, reason,
                                   delay, None)
                else:
                    if _is_node(row):  # back to PENDING: its workflow may have stopped
                        self.nodes_ended.append(row[_ID])
                    self.stmt.give_back(row[_ID], child.pid)
            self.stmt.gone_pids.append(child.pid)

    def _starts(self) -> None:
        cycle = self.cycle
        if not cycle.starting:
            return
        children = [c for c in cycle.pool.children if c.live and c not in self.deaths]
        if cycle.ready is not None:
            self._confirms([c for c in children if len(c.queue) == self.consumed[c]])
            return
        if not cycle.maybe_work:
            return
        size = cycle.sizing.size()
        wanted: list[list[int]] = []
        # The least busy first: when work is short, idle children get it.
        children.sort(key=lambda c: len(c.queue) - self.consumed[c])
        for child in children:
            outstanding = len(child.queue) - self.consumed[child]
            if outstanding < size:
                first = child.next_seq
                child.next_seq += size  # reserved now: a failed cycle never reuses them
                wanted.append([child.pid, first, size])
                self.starting.add(child)
                self.reserved[child] = list(range(first, first + size))
        # Interleaved, so that a short supply is shared between the children.
        stmt = self.stmt
        while wanted:
            for entry in list(wanted):
                stmt.slot_pids.append(entry[0])
                stmt.slot_seqs.append(entry[1])
                entry[1] += 1
                entry[2] -= 1
                if entry[2] == 0:
                    wanted.remove(entry)

    def _confirms(self, idle: list[Child]) -> None:
        ready = self.cycle.ready
        assert ready is not None
        self.confirming = ready.take(len(idle))
        for (_, _, task_id), child in zip(self.confirming, idle, strict=False):
            self.stmt.confirm_ids.append(task_id)
            self.stmt.confirm_pids.append(child.pid)
            self.stmt.confirm_seqs.append(child.next_seq)
            self.reserved[child] = [child.next_seq]
            child.next_seq += 1
            self.starting.add(child)

    def _marks(self) -> None:
        """Raise a child's limit before it reaches it: in the cycle that gives it
        work, or that finds fewer than half the allowance of its next tasks
        within its limit. The limit counts tasks, not run positions (a failed
        cycle leaves gaps): it is the position of the allowance-th task after
        the last one the child began."""
        allowance = self.cycle.allowance
        for child in self.cycle.pool.children:
            if not child.live or child in self.deaths:
                continue
            if not child.queue and child not in self.starting:
                continue
            began = child.started
            upcoming = self._upcoming(child, began, allowance)
            within = sum(1 for seq in upcoming if seq <= child.limit)
            if child.limit and within >= allowance // 2:
                continue
            if len(upcoming) >= allowance:
                limit = upcoming[allowance - 1]
            else:  # room for tasks not assigned yet
                limit = (upcoming[-1] if upcoming else began) + allowance - len(upcoming)
            if limit > child.limit:
                self.marks[child] = limit
                self.stmt.mark_pids.append(child.pid)
                self.stmt.mark_limits.append(limit)

    def _upcoming(self, child: Child, began: int, count: int) -> list[int]:
        """The run positions of the next `count` tasks the child has not begun."""
        upcoming: list[int] = []
        for row in child.queue:
            seq = row[_SEQ]
            if seq > began:
                upcoming.append(seq)
                if len(upcoming) == count:
                    return upcoming
        for seq in self.reserved.get(child, ()):
            upcoming.append(seq)
            if len(upcoming) == count:
                break
        return upcoming

    # -- writing -------------------------------------------------------------------

    async def execute(self, conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
        cycle = self.cycle
        if not self.stmt.writes:
            return []
        try:
            try:
                if self.nodes_ended:
                    # The workflow moves in the transaction that ends its nodes' tasks.
                    async with conn.transaction():
                        rows = await self._run(conn, self.stmt)
                        await self._advance(conn)
                    return rows
                return await self._run(conn, self.stmt)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error("A cycle statement failed (%s: %s); writing its endings one by one",
                          type(exc).__name__, exc)
                rows = await self._isolate(conn)
                await self._advance_alone(conn)
                return rows
        except BaseException:
            if cycle.ready is not None and self.confirming:
                cycle.ready.put_back(self.confirming)
            raise

    async def _advance(self, conn: psycopg.AsyncConnection[Any]) -> None:
        from horsies.workflows import engine

        await engine.tasks_ended(conn, self.nodes_ended, app=self.cycle.app)

    async def _advance_alone(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """After endings written one by one: the workflows move in a transaction of
        their own; if that fails too, the reaper's recovery moves them later."""
        if not self.nodes_ended:
            return
        try:
            async with conn.transaction():
                await self._advance(conn)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.error("Workflow nodes of %d ended task(s) not advanced (%s: %s); recovery "
                      "will", len(self.nodes_ended), type(exc).__name__, exc)

    async def _run(self, conn: psycopg.AsyncConnection[Any], stmt: Statement
                   ) -> list[tuple[Any, ...]]:
        cycle = self.cycle
        cur = await conn.execute(cycle.statement, stmt.params(
            cycle.worker_id, cycle.hostname, cycle.queues))
        return await cur.fetchall()

    async def _isolate(self, conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
        """One ending at a time; an attempt whose result the database refuses
        ends with a WORKER_SERIALIZATION_ERROR naming why, instead of stopping
        the worker (workers.md §8.4)."""
        rows: list[tuple[Any, ...]] = []
        for one in self.stmt.endings():
            try:
                rows += await self._run(conn, one)
                continue
            except Exception as exc:
                if is_transient(exc):
                    raise
                refused = exc
            task_id = (one.ok_ids or one.bad_ids or one.back_ids)[0]
            pid = (one.ok_pids or one.bad_pids or one.back_pids)[0]
            instead = Statement()
            reason = storable(f"the result could not be stored: {refused}")
            instead.fail(task_id, pid, unstorable_result(task_id, refused),
                         "WORKER_SERIALIZATION_ERROR", reason, None, None, None)
            try:
                rows += await self._run(conn, instead)
                log.error("Task %s: its result was refused (%s); stored as "
                          "WORKER_SERIALIZATION_ERROR", task_id, refused)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.critical("Task %s could not be finalized (%s); it stays RUNNING",
                             task_id, exc)
        return rows + await self._run(conn, self.stmt.without_endings())

    async def apply(self, rows: list[tuple[Any, ...]], conn: psycopg.AsyncConnection[Any]
                    ) -> None:
        cycle = self.cycle
        for child, count in self.consumed.items():
            for _ in range(count):
                child.queue.popleft()
        observe = cycle.sizing.observe
        for duration in self.durations:
            observe(duration)
        runs: dict[int, list[Handed]] = defaultdict(list)
        recorded: set[int] = set()
        completed = 0
        for row in rows:
            kind = row[0]
            if kind == "S":
                runs[row[_PID]].append(row)
            elif kind == "F":
                self._failed(row)
            elif kind == "M":
                recorded.add(row[_PID])
            else:
                completed += row[_SEQ]
        lost = self._confirmed(runs)
        self._hand_out(runs, recorded)
        if (self.stmt.slot_pids and len(self.stmt.slot_pids) > sum(map(len, runs.values()))
                and cycle.looks == self.looks):
            # The queues ran dry at this statement's snapshot, and nothing has
            # announced work since it was planned (a row committed meanwhile did).
            cycle.maybe_work = False
        if self.consumed or self.deaths:
            cycle.on_capacity()
        # What is written is applied above; what follows only reads or tidies, and
        # a connection lost here must not undo any of it.
        try:
            started = [row[_ID] for handed in runs.values() for row in handed if _is_node(row)]
            if started:
                from horsies.workflows import engine

                await engine.tasks_started(conn, started)
            if lost:
                await self._diagnose(lost, conn)
            if completed < len(self.stmt.ok_ids):
                await self._late(conn)
        except Exception as exc:  # noqa: BLE001 - the next cycle reconnects
            log.warning("after a cycle: %s", exc)

    def _failed(self, row: tuple[Any, ...]) -> None:
        if row[_RETRIES] == 1:
            at: datetime = row[11]
            log.info("Scheduled task %s for retry #%s at %s", row[_ID], row[_SEQ], at.isoformat())
            self.cycle.on_retry(row[_ID], row[_QUEUE], at)

    async def _late(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(queries["task_ended_by_others"], {
            "ids": self.stmt.ok_ids, "worker_id": self.cycle.worker_id})
        for task_id, status, owner in await cur.fetchall():
            log.warning("Task %s result dropped: the task is %s%s, no longer RUNNING on this "
                        "worker", task_id, status,
                        "" if owner is None else f" (worker {owner})")

    def _confirmed(self, runs: dict[int, list[Handed]]) -> list[str]:
        """The claims this cycle could not confirm."""
        ready = self.cycle.ready
        if ready is None or not self.confirming:
            return []
        ready.done(self.confirming)
        started = {row[_ID] for handed in runs.values() for row in handed}
        return [task.task_id for task in self.confirming if task.task_id not in started]

    async def _diagnose(self, lost: list[str], conn: psycopg.AsyncConnection[Any]) -> None:
        """Unconfirmed claims (workers.md §6.2): a deadline that passed expires the
        task (T8); anything else lost the claim (a lapsed lease, another owner)."""
        cur = await conn.execute(queries["task_expire_claimed_many"],
                                 {"ids": lost, "worker_id": self.cycle.worker_id})
        expired = {row[0] for row in await cur.fetchall()}
        stopped = await self._stopped(lost, conn)
        for task_id in lost:
            if task_id in expired:
                log.info("Task %s expired before start (TASK_EXPIRED)", task_id)
            elif task_id in stopped:
                log.info("Task %s not started: its workflow is paused or cancelled "
                         "(WORKFLOW_STOPPED)", task_id)
            else:
                log.info("Task %s dropped: claim lost before start (CLAIM_LOST)", task_id)

    async def _stopped(self, lost: list[str], conn: psycopg.AsyncConnection[Any]) -> set[str]:
        """Lost claims of workflow nodes whose workflow stopped: T10 (workers.md §6.2
        checks 2-3), through the engine that owns workflow locks."""
        from horsies.workflows import engine

        async with conn.transaction():
            return await engine.stop_claims(conn, lost)

    def _hand_out(self, runs: dict[int, list[Handed]], recorded: set[int]) -> None:
        cycle = self.cycle
        for child in self.starting:
            if child not in cycle.pool.children and child.pid in runs:
                # It died while this cycle was in flight and has left the pool; what
                # was started on it still goes to its queue (see _hand).
                _hand(child, sorted(runs[child.pid], key=lambda row: row[_SEQ]))
        for child in cycle.pool.children:
            handed = runs.get(child.pid)
            if child in self.marks:
                if child.pid in recorded:
                    child.limit = self.marks[child]
                else:
                    # A reaper recovered this child's tasks: it must start nothing
                    # more. Its end returns what this cycle gave it.
                    log.warning("Child %d was taken over by a reaper; stopping it", child.pid)
                    child.queue.extend(sorted(handed or (), key=lambda row: row[_SEQ]))
                    child.kill()
                    continue
            if handed:
                handed.sort(key=lambda row: row[_SEQ])
                _hand(child, handed)
            elif child in self.marks and child.handed > 0:
                child.send(protocol.Limit(limit=child.limit))


def _hand(child: Child, handed: list[Handed]) -> None:
    """Queue a run on `child` and send it. A child that has exited gets it queued
    only: its death returns what its queue holds beyond what it began, so the run
    goes back to PENDING at once instead of waiting for the reaper's threshold."""
    child.queue.extend(handed)
    child.handed = handed[-1][_SEQ]
    if child.exited:
        return
    child.send(protocol.Run(
        tasks=[(row[_SEQ], row[_ID], row[_NAME], row[_ARGS], row[_KWARGS]) for row in handed],
        limit=child.limit))

