"""The workflow readiness rule (workflows.md §16.4): compiled and pure twins side by side."""

from __future__ import annotations

from array import array

from benchmarks._inputs import SIZES, load_twin, readiness_columns, readiness_rows


class TimeEvaluateReadiness:
    """`size` single calls, one per PENDING dependent the engine evaluates."""

    params = (["c", "py"], SIZES)
    param_names = ["impl", "size"]

    def setup(self, impl: str, size: int) -> None:
        self.evaluate = load_twin("dag_ready", impl).evaluate_readiness
        self.rows = readiness_rows(size)

    def time_evaluate_readiness(self, impl: str, size: int) -> None:
        evaluate = self.evaluate
        for row in self.rows:
            evaluate(*row)


class TimeEvaluateReadinessMany:
    """The batch form over `size` rows, from lists and from int32 buffers."""

    params = (["c", "py"], SIZES, ["list", "buffer"])
    param_names = ["impl", "size", "container"]

    def setup(self, impl: str, size: int, container: str) -> None:
        self.evaluate_many = load_twin("dag_ready", impl).evaluate_readiness_many
        columns = readiness_columns(size)
        self.columns = columns if container == "list" else [array("i", c) for c in columns]

    def time_evaluate_readiness_many(self, impl: str, size: int, container: str) -> None:
        self.evaluate_many(*self.columns)
