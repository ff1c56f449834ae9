"""Pause, resume and cancel (workflows.md §10.6, §13.5–§13.7).

Each operation is one transaction over the workflow and every descendant,
locked in id order. Pausing and cancelling stop the tasks that have not
started at once (T10): a task already handed to a child runs to its end, and
no row of a stopped workflow is left for a worker to claim, so claiming
needs no look at workflows. Resuming evaluates what was held back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from horsies.sql import queries

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.workflows.engine import Conn, Step

__all__ = ["cancel", "pause", "resume"]

_OPEN = ("PENDING", "RUNNING", "PAUSED")


async def pause(conn: Conn, workflow_id: str, app: Horsies | None) -> bool | None:
    """RUNNING -> PAUSED with every RUNNING descendant; None when it does not exist."""
    step = await _tree_step(conn, workflow_id, app)
    if step is None:
        return None
    if step.locked[workflow_id][0] != "RUNNING":
        return False
    ids = await _set_status(step, "PAUSED", ("RUNNING",))
    from horsies.workflows.engine import stop_tasks

    await stop_tasks(conn, {wf: step.locked[wf] for wf in ids})
    return True


async def resume(conn: Conn, workflow_id: str, app: Horsies | None) -> bool | None:
    """PAUSED -> RUNNING with every PAUSED descendant, then everything held back
    moves: PENDING nodes meet the readiness rule, READY ones are enqueued,
    children that ended tell their parent nodes, and finished workflows finish."""
    step = await _tree_step(conn, workflow_id, app)
    if step is None:
        return None
    if step.locked[workflow_id][0] != "PAUSED":
        return False
    ids = await _set_status(step, "RUNNING", ("PAUSED",))
    cur = await conn.execute(queries["wf_recover_children"], {"ids": ids, "limit": None})
    for (child,) in await cur.fetchall():
        await step.tell_parent(child)
    await step.advance()  # what the children's ends propagate
    cur = await conn.execute(queries["wf_recount_pending"], {"wf": ids})
    await step.decide([row for row in await cur.fetchall() if step.running(row[0])])
    cur = await conn.execute(queries["wf_ready_of"], {"wf": ids})
    await step.enqueue([(row[0], row[1]) for row in await cur.fetchall()
                        if step.running(row[0])])
    step.touched.update(ids)
    await step.advance()
    return True


async def cancel(conn: Conn, workflow_id: str, app: Horsies | None) -> bool | None:
    """PENDING/RUNNING/PAUSED -> CANCELLED with every open descendant (§13.7)."""
    step = await _tree_step(conn, workflow_id, app)
    if step is None:
        return None
    if step.locked[workflow_id][0] not in _OPEN:
        return False
    ids = await _set_status(step, "CANCELLED", _OPEN)
    from horsies.workflows.engine import stop_tasks

    await stop_tasks(conn, {wf: step.locked[wf] for wf in ids})
    await conn.execute(queries["wf_skip_open_nodes"], {"wf": ids})
    # Subworkflow nodes whose child ended (cancelled now, or finished just before
    # without reaching its parent) record how (§10.1); the parent of a workflow
    # cancelled by hand, if it runs, goes on with its on_error.
    cur = await conn.execute(queries["wf_recover_children"],
                             {"ids": sorted(step.locked), "limit": None})
    for (child,) in await cur.fetchall():
        await step.tell_parent(child)
    await step.tell_parent(workflow_id)
    await step.advance()
    return True


async def _tree_step(conn: Conn, workflow_id: str, app: Horsies | None) -> Step | None:
    """The workflow and its descendants locked in id order; None if it does not
    exist. A child started while the locks were taken is locked after them."""
    from horsies.workflows.engine import Step

    step = Step(conn, {}, app)
    while True:
        cur = await conn.execute(queries["wf_tree"], {"id": workflow_id})
        tree = sorted(row[0] for row in await cur.fetchall() if row[0] not in step.locked)
        if not tree:
            return step if workflow_id in step.locked else None
        cur = await conn.execute(queries["wf_lock"], {"ids": tree})
        for row in await cur.fetchall():
            step.locked[row[0]] = (row[1], row[2])
        if workflow_id not in step.locked:
            return None


async def _set_status(step: Step, status: str, expected: tuple[str, ...]) -> list[str]:
    cur = await step.conn.execute(queries["wf_set_status"], {
        "ids": list(step.locked), "status": status, "expected": list(expected)})
    ids: list[str] = [row[0] for row in await cur.fetchall()]
    for wf in ids:
        step.locked[wf] = (status, step.locked[wf][1])
    return ids
