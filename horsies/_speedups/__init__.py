"""The compiled hot paths and the switch that picks their implementation.

Each hot path exists twice: ``<name>_c`` (Cython) and ``<name>_py`` (pure
Python, the reference). At import, and only then, this module reads
``HORSIES_NO_EXTENSIONS``: ``1``, ``true``, ``yes`` or ``on`` (any case) turn
the compiled twins off. Otherwise it imports every compiled twin; if any of
them fails, it uses every pure twin and keeps the reason in `IMPL_ERROR`, so
the package never runs on a mix of the two.

The rest of horsies imports the functions from here, never from a twin.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final, Literal

__all__ = [
    "IMPL",
    "IMPL_ERROR",
    "NO_EXTENSIONS",
    "TWINS",
    "effective_max_claimed",
    "compute_pass_budget",
    "queue_claim_limit",
    "order_queues",
    "plan_pass",
    "Codec",
    "Join",
    "Readiness",
    "evaluate_readiness",
    "evaluate_readiness_many",
]

TWINS: Final = ("budget", "claim_plan", "codec", "dag_ready")
"""The hot paths; each is a ``<name>_c`` / ``<name>_py`` module pair."""

_ON: Final = frozenset({"1", "true", "yes", "on"})

NO_EXTENSIONS: Final[bool] = (
    os.environ.get("HORSIES_NO_EXTENSIONS", "").strip().lower() in _ON
    or sys.implementation.name != "cpython"
)
"""True when the compiled twins were turned off (by the variable, or on PyPy & co)."""

IMPL: Literal["c", "python"]
"""The implementation in use: ``"c"`` (compiled twins) or ``"python"``."""

IMPL_ERROR: str | None = None
"""Why the compiled twins could not be loaded; None when they were, or were turned off."""

if TYPE_CHECKING:
    from horsies._speedups import _api, budget_py, claim_plan_py, codec_py, dag_ready_py
    from horsies._speedups.budget_py import compute_pass_budget, effective_max_claimed
    from horsies._speedups.claim_plan_py import order_queues, plan_pass, queue_claim_limit
    from horsies._speedups.codec_py import Codec
    from horsies._speedups.dag_ready_py import (
        Join,
        Readiness,
        evaluate_readiness,
        evaluate_readiness_many,
    )

    # mypy checks each pure twin against its Protocol.
    _budget_api: _api.BudgetModule = budget_py
    _claim_plan_api: _api.ClaimPlanModule = claim_plan_py
    _codec_api: _api.CodecModule = codec_py
    _dag_ready_api: _api.DagReadyModule = dag_ready_py

    IMPL = "python"
else:
    _budget = _claim_plan = _codec = _dag_ready = None
    if not NO_EXTENSIONS:
        try:  # all or nothing: bind the names only once every twin loaded
            from horsies._speedups import budget_c as _b, claim_plan_c as _p, codec_c as _k
            from horsies._speedups import dag_ready_c as _d
        except Exception as exc:  # noqa: BLE001 - ImportError, or a broken build
            IMPL_ERROR = f"{type(exc).__name__}: {exc}"
        else:
            _budget, _claim_plan, _codec, _dag_ready = _b, _p, _k, _d
            del _b, _p, _k, _d
    if _codec is None:
        from horsies._speedups import budget_py as _budget, claim_plan_py as _claim_plan
        from horsies._speedups import codec_py as _codec, dag_ready_py as _dag_ready

        IMPL = "python"
    else:
        IMPL = "c"

    effective_max_claimed = _budget.effective_max_claimed
    compute_pass_budget = _budget.compute_pass_budget
    queue_claim_limit = _claim_plan.queue_claim_limit
    order_queues = _claim_plan.order_queues
    plan_pass = _claim_plan.plan_pass
    Codec = _codec.Codec
    Join = _dag_ready.Join
    Readiness = _dag_ready.Readiness
    evaluate_readiness = _dag_ready.evaluate_readiness
    evaluate_readiness_many = _dag_ready.evaluate_readiness_many
    del _budget, _claim_plan, _codec, _dag_ready
