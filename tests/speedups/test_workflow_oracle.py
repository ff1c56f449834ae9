"""The §16.8 oracle run against both dag_ready twins (workflows.md §16.4, §16.8).

Random DAGs are simulated with the spec's reference rule and with each twin's
`evaluate_readiness`; final node statuses, the workflow outcome and which nodes
ran must be identical, whatever order running nodes finish in. The engine's
`evaluate_outcome` must agree with the oracle's own reading of §9.1/§9.2.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from horsies.workflows.outcome import evaluate_outcome
from tests.workflow_oracle import random_dag, simulate

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 40),
       fail_rate=st.sampled_from([0.0, 0.1, 0.3, 0.6]))
def test_simulation_with_each_twin_equals_the_reference(impl, seed, size, fail_rate):
    rng = random.Random(seed)
    nodes, outcomes = random_dag(rng, size, fail_rate=fail_rate)
    expected = simulate(nodes, outcomes)
    found = simulate(nodes, outcomes, readiness=impl.dag_ready.evaluate_readiness)
    assert found == expected


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 30))
def test_final_statuses_do_not_depend_on_finishing_order(impl, seed, size):
    rng = random.Random(seed)
    nodes, outcomes = random_dag(rng, size)
    first = simulate(nodes, outcomes, readiness=impl.dag_ready.evaluate_readiness)
    shuffled = simulate(nodes, outcomes, readiness=impl.dag_ready.evaluate_readiness,
                        order=random.Random(seed + 1))
    assert (shuffled.statuses, shuffled.status) == (first.statuses, first.status)
    assert sorted(shuffled.ran) == sorted(first.ran)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 30),
       cases=st.integers(0, 3))
def test_engine_outcome_equals_the_oracle(seed, size, cases):
    rng = random.Random(seed)
    nodes, outcomes = random_dag(rng, size)
    success_cases = None
    if cases:
        success_cases = [sorted(rng.sample(range(size), k=rng.randint(1, min(3, size))))
                         for _ in range(cases)]
    run = simulate(nodes, outcomes, success_cases=success_cases)
    status, error_index, not_met = evaluate_outcome(run.statuses, False, success_cases)
    assert (status, error_index) == (run.status, run.error_index)
    assert not_met == (status == "FAILED" and success_cases is not None
                       and error_index is None)


def test_a_stored_error_fails_a_workflow_without_failed_nodes():
    from horsies.states import WorkflowTaskStatus as S

    assert evaluate_outcome([S.COMPLETED, S.SKIPPED], True, None) == ("FAILED", None, False)
    assert evaluate_outcome([S.COMPLETED, S.SKIPPED], False, None) == ("COMPLETED", None, False)
    assert evaluate_outcome([S.FAILED, S.COMPLETED], False, [[1]]) == ("COMPLETED", None, False)
    assert evaluate_outcome([S.SKIPPED, S.FAILED], False, [[0]]) == ("FAILED", None, True)
    assert evaluate_outcome([S.FAILED, S.FAILED], False, [[1], [0]]) == ("FAILED", 0, False)
