"""Claim budget of a pass: compiled and pure twins side by side."""

from __future__ import annotations

from typing import Any

from benchmarks._inputs import SIZES, budget_cases, load_twin


class TimeBudget:
    """`size` calls on the seeded inputs of a busy worker."""

    params = (["c", "py"], SIZES)
    param_names = ["impl", "size"]

    def setup(self, impl: str, size: int) -> None:
        module = load_twin("budget", impl)
        self.compute_pass_budget = module.compute_pass_budget
        self.effective_max_claimed = module.effective_max_claimed
        self.cases: list[tuple[Any, ...]] = budget_cases(size)

    def time_compute_pass_budget(self, impl: str, size: int) -> None:
        compute = self.compute_pass_budget
        for args in self.cases:
            compute(*args)

    def time_effective_max_claimed(self, impl: str, size: int) -> None:
        effective = self.effective_max_claimed
        for args in self.cases:
            effective(args[0], args[1], args[2])
