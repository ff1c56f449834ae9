"""Claim planning of a pass: compiled and pure twins side by side."""

from __future__ import annotations

from benchmarks._inputs import SIZES, budget_cases, load_twin, order_case, plan_case


class TimePlanPass:
    """One pass over `size` queues."""

    params = (["c", "py"], SIZES)
    param_names = ["impl", "size"]

    def setup(self, impl: str, size: int) -> None:
        self.plan_pass = load_twin("claim_plan", impl).plan_pass
        self.case = plan_case(size)

    def time_plan_pass(self, impl: str, size: int) -> None:
        self.plan_pass(*self.case)


class TimeOrderQueues:
    """Ordering `size` queues by priority (CUSTOM mode)."""

    params = (["c", "py"], SIZES)
    param_names = ["impl", "size"]

    def setup(self, impl: str, size: int) -> None:
        self.order_queues = load_twin("claim_plan", impl).order_queues
        self.names, self.priorities = order_case(size)

    def time_order_queues(self, impl: str, size: int) -> None:
        self.order_queues(self.names, self.priorities)


class TimeQueueClaimLimit:
    """`size` calls, one per queue visited."""

    params = (["c", "py"], SIZES)
    param_names = ["impl", "size"]

    def setup(self, impl: str, size: int) -> None:
        self.queue_claim_limit = load_twin("claim_plan", impl).queue_claim_limit
        self.cases = [(c[6] % 64, 1 + c[0] % 16, c[3], c[4]) for c in budget_cases(size)]

    def time_queue_claim_limit(self, impl: str, size: int) -> None:
        limit = self.queue_claim_limit
        for args in self.cases:
            limit(*args)
