"""`skip_when` / `run_when` evaluated by the engine (workflows.md §7).

A condition is stored as `module:qualname` and imported back by whichever
process advances the workflow. It runs when the node's join is satisfied,
before anything is enqueued, with a `WorkflowContext` over the node's
`workflow_ctx_from` nodes (every dependency when that is empty). An
evaluation error fails the node: treating it as "skip" would hide bugs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from horsies.codes import OperationalErrorCode, OutcomeCode
from horsies.sql import queries
from horsies.workflows.context import WorkflowContext

if TYPE_CHECKING:
    from horsies.workflows.engine import NodeRef, Settled, Step

__all__ = ["Verdict", "judge", "load_condition"]

_loaded: dict[str, Callable[..., Any]] = {}


class Verdict:
    """Nodes that may run, and the others made terminal."""

    def __init__(self) -> None:
        self.run: set[NodeRef] = set()
        self.settled: list[Settled] = []


def load_condition(ref: str) -> Callable[..., Any]:
    """The callable a stored `module:qualname` names (raises when it cannot)."""
    found = _loaded.get(ref)
    if found is not None:
        return found
    module_name, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{ref} is not callable")
    _loaded[ref] = target
    return target  # type: ignore[no-any-return]


async def judge(step: Step, rows: Sequence[tuple[str, int, str | None, str | None]]
                ) -> Verdict:
    """Evaluate the conditions of nodes whose join is satisfied: rows of
    (workflow id, index, skip_when ref, run_when ref)."""
    from horsies.workflows.engine import failure_json, source_text

    verdict = Verdict()
    cur = await step.conn.execute(queries["wf_condition_inputs"], {
        "wf": [r[0] for r in rows], "idx": [r[1] for r in rows]})
    contexts = {(row[0], row[1]): row for row in await cur.fetchall()}
    inputs = await step.results_of((wf, i) for (wf, _), row in contexts.items()
                                   for i in row[3] or ())
    for wf, index, skip_ref, run_ref in rows:
        _, _, task_name, indices = contexts[(wf, index)]
        results: dict[str, str] = {}
        for i in indices or ():
            source = inputs.get((wf, i))
            text = source_text(source, i)
            if source is not None and text is not None:
                results[source[2]] = text
        ctx = WorkflowContext.from_serialized(wf, index, task_name, results, None)
        outcome = _evaluate(ctx, skip_ref, run_ref)
        if outcome is None:
            verdict.run.add((wf, index))
        elif outcome[0] == "SKIPPED":
            verdict.settled.append((wf, index, "SKIPPED", None, outcome[1]))
        else:
            verdict.settled.append((wf, index, "FAILED", failure_json(
                OperationalErrorCode.CONDITION_EVALUATION_ERROR, outcome[1]), None))
    return verdict


def _evaluate(ctx: WorkflowContext, skip_ref: str | None, run_ref: str | None
              ) -> tuple[str, str] | None:
    """None: run. Else (SKIPPED, encoded TaskError) or (FAILED, message)."""
    for field, ref, stop_on in (("skip_when", skip_ref, True), ("run_when", run_ref, False)):
        if not ref:
            continue
        try:
            answer = load_condition(ref)(ctx)
        except Exception as exc:  # noqa: BLE001 - a condition's failure fails its node
            return "FAILED", (f"{field} condition {ref} raised {type(exc).__name__}: {exc}")
        if not isinstance(answer, bool):
            return "FAILED", (f"{field} condition {ref} returned {type(answer).__name__}, "
                              "not bool")
        if answer is stop_on:
            code = OutcomeCode.CONDITION_SKIPPED if stop_on else OutcomeCode.CONDITION_NOT_MET
            text = (f"skip_when condition {ref} returned True" if stop_on
                    else f"run_when condition {ref} returned False")
            from horsies.workflows.engine import error_json

            return "SKIPPED", error_json(code, text, condition=ref)
    return None
