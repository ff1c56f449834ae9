"""Workflows run by real workers started from the CLI (workflows.md §5, §6, §9, §16).

Each test builds a spec with `app.workflow`, starts it, waits with
`handle.get()`, and checks the outcome, every node's status, and from the
ledger that every node that ran ran exactly once.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from horsies import (
    OutcomeCode,
    SuccessCase,
    SuccessPolicy,
    TaskNode,
    WorkflowStatus,
    WorkflowTaskStatus,
)
from tests.workers import app_module_at
from tests.workflow_oracle import OracleNode, random_dag, simulate

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.workflow_apps:app"
WAIT_MS = 90_000


@pytest.fixture
def wf(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from app_module_at("tests.integration.workflow_apps", pg_url, monkeypatch)


@pytest.fixture
def worker(wf: Any, worker_env: dict[str, str], start_worker: Any) -> Any:
    process = start_worker([APP, "--processes=2"], worker_env, cwd=REPO)
    process.wait_for("Worker started")
    return process


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    return str(tmp_path / "ledger")


def runs_of(ledger: str) -> Counter[str]:
    path = Path(ledger)
    return Counter(path.read_text().split()) if path.exists() else Counter()


def step(wf: Any, ledger: str, label: str, *, fail: bool = False, seconds: float = 0.0,
         **options: Any) -> TaskNode[str]:
    kwargs = {"ledger": ledger, "label": label, "fail": fail}
    if seconds:
        kwargs["seconds"] = seconds
    return TaskNode(fn=wf.wf_step, kwargs=kwargs, node_id=label, **options)


def build(wf: Any, ledger: str, shape: Sequence[OracleNode], outcomes: Mapping[int, bool],
          seconds: Sequence[float] | None = None) -> list[TaskNode[str]]:
    """The oracle's nodes as `wf_step` nodes labelled n0, n1, ...; node i fails when
    outcomes[i] is False and sleeps seconds[i]."""
    built: list[TaskNode[str]] = []
    for i, node in enumerate(shape):
        built.append(step(wf, ledger, f"n{i}", fail=not outcomes[i],
                          seconds=seconds[i] if seconds else 0.0,
                          waits_for=[built[d] for d in node.deps], join=node.join,
                          min_success=node.min_success,
                          allow_failed_deps=node.allow_failed_deps,
                          workflow_ctx_from=[built[c] for c in node.ctx_from] or None))
    return built


def finish(wf: Any, name: str, tasks: list[Any], **options: Any) -> tuple[Any, Any]:
    spec = wf.app.workflow(name=name, tasks=tasks, definition_key=f"tests.{name}.v1",
                           **options)
    handle = spec.start().unwrap()
    return handle, handle.get(timeout_ms=WAIT_MS)


def statuses(handle: Any) -> dict[str, WorkflowTaskStatus]:
    return {info.node_id: info.status for info in handle.tasks().unwrap()}


def test_linear_chain_passes_each_result_on(wf: Any, worker: Any, ledger: str) -> None:
    first = TaskNode(fn=wf.wf_number, kwargs={"ledger": ledger, "label": "n", "value": 2},
                     node_id="n")
    twice = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "x2"},
                     waits_for=[first], args_from={"value": first}, node_id="x2")
    again = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "x4"},
                     waits_for=[twice], args_from={"value": twice}, node_id="x4")
    handle, outcome = finish(wf, "chain", [first, twice, again], output=again)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == 8
    assert handle.status().unwrap() == WorkflowStatus.COMPLETED
    assert set(statuses(handle).values()) == {WorkflowTaskStatus.COMPLETED}
    assert runs_of(ledger) == Counter({"n": 1, "x2": 1, "x4": 1})
    assert handle.result_for(twice).ok_value == 4


def test_fan_out_without_output_returns_every_sink(wf: Any, worker: Any, ledger: str) -> None:
    reads = [step(wf, ledger, f"read_{s}") for s in ("OSL", "BGO", "TRD", "SVG")]
    handle, outcome = finish(wf, "fan_out", reads)
    assert outcome.is_ok(), outcome
    assert {k: v.ok_value for k, v in outcome.ok_value.items()} == {
        f"read_{s}": f"read_{s}" for s in ("OSL", "BGO", "TRD", "SVG")}
    assert set(handle.results().unwrap()) == set(outcome.ok_value)
    assert runs_of(ledger) == Counter({f"read_{s}": 1 for s in ("OSL", "BGO", "TRD", "SVG")})


def test_fan_in_with_a_context(wf: Any, worker: Any, ledger: str) -> None:
    reads = [step(wf, ledger, f"r{i}") for i in range(3)]
    gather = TaskNode(fn=wf.wf_gather, kwargs={"ledger": ledger, "label": "all",
                                               "sources": ["r0", "r1", "r2"]},
                      waits_for=reads, workflow_ctx_from=reads, node_id="all")
    _, outcome = finish(wf, "fan_in", [*reads, gather], output=gather)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == "3:r0,r1,r2"  # task_index 3, every read in order


def test_diamond_with_args_from(wf: Any, worker: Any, ledger: str) -> None:
    fetch = TaskNode(fn=wf.wf_number, kwargs={"ledger": ledger, "label": "fetch", "value": 5},
                     node_id="fetch")
    wind = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "wind"},
                    waits_for=[fetch], args_from={"value": fetch}, node_id="wind")
    rain = TaskNode(fn=wf.wf_double, kwargs={"ledger": ledger, "label": "rain"},
                    waits_for=[fetch], args_from={"value": fetch}, node_id="rain")
    forecast = TaskNode(fn=wf.wf_add, kwargs={"ledger": ledger, "label": "forecast"},
                        waits_for=[wind, rain], args_from={"left": wind, "right": rain},
                        node_id="forecast")
    _, outcome = finish(wf, "diamond", [fetch, wind, rain, forecast], output=forecast)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == 20
    assert runs_of(ledger) == Counter({"fetch": 1, "wind": 1, "rain": 1, "forecast": 1})


def test_or_join_runs_on_the_first_success(wf: Any, worker: Any, ledger: str) -> None:
    primary = step(wf, ledger, "primary", fail=True)
    mirror = step(wf, ledger, "mirror")
    pick = TaskNode(fn=wf.wf_first, kwargs={"ledger": ledger, "label": "pick"},
                    waits_for=[primary, mirror], args_from={"primary": primary,
                                                            "mirror": mirror},
                    join="any", node_id="pick")
    handle, outcome = finish(wf, "or_join", [primary, mirror, pick], output=pick)
    # the primary failed, so the workflow fails although pick answered
    assert statuses(handle)["pick"] == WorkflowTaskStatus.COMPLETED
    assert handle.result_for(pick).ok_value == "mirror"
    assert outcome.is_err() and outcome.err_value.error_code == "STEP_FAILED"
    assert runs_of(ledger)["pick"] == 1


def test_or_join_is_skipped_when_every_source_fails(wf: Any, worker: Any, ledger: str) -> None:
    primary = step(wf, ledger, "primary", fail=True)
    mirror = step(wf, ledger, "mirror", fail=True)
    pick = TaskNode(fn=wf.wf_first, kwargs={"ledger": ledger, "label": "pick"},
                    waits_for=[primary, mirror], args_from={"primary": primary,
                                                            "mirror": mirror},
                    join="any", node_id="pick")
    handle, outcome = finish(wf, "or_join_none", [primary, mirror, pick], output=pick)
    assert statuses(handle)["pick"] == WorkflowTaskStatus.SKIPPED
    assert outcome.is_err()
    assert handle.status().unwrap() == WorkflowStatus.FAILED
    assert "pick" not in runs_of(ledger)


@pytest.mark.parametrize(("failing", "expected"), [
    (1, WorkflowTaskStatus.COMPLETED), (2, WorkflowTaskStatus.SKIPPED)])
def test_quorum(wf: Any, worker: Any, ledger: str, failing: int,
                expected: WorkflowTaskStatus) -> None:
    sensors = [step(wf, ledger, f"s{i}", fail=i < failing) for i in range(3)]
    agree = TaskNode(fn=wf.wf_gather, kwargs={"ledger": ledger, "label": "agree",
                                              "sources": ["s0", "s1", "s2"]},
                     waits_for=sensors, workflow_ctx_from=sensors, join="quorum",
                     min_success=2, node_id="agree")
    handle, _ = finish(wf, f"quorum_{failing}", [*sensors, agree])
    assert statuses(handle)["agree"] == expected
    if expected == WorkflowTaskStatus.COMPLETED:
        # the context gate waited for every sensor; the failed one reads as failed
        assert handle.result_for(agree).ok_value == "3:!s0,s1,s2"


@pytest.mark.parametrize("tolerant", [True, False])
def test_failure_propagates_along_its_path_only(wf: Any, worker: Any, ledger: str,
                                                tolerant: bool) -> None:
    """workflows.md §6.3: extract fails; clean and load are skipped; archive runs only
    with allow_failed_deps; index and publish are unaffected; the workflow FAILS."""
    extract = step(wf, ledger, "extract", fail=True)
    clean = step(wf, ledger, "clean", waits_for=[extract])
    load = TaskNode(fn=wf.wf_inspect, kwargs={"ledger": ledger, "label": "load"},
                    waits_for=[clean], args_from={"seen": clean},
                    allow_failed_deps=tolerant, node_id="load")
    archive = TaskNode(fn=wf.wf_inspect, kwargs={"ledger": ledger, "label": "archive"},
                       waits_for=[extract], args_from={"seen": extract},
                       allow_failed_deps=tolerant, node_id="archive")
    index = step(wf, ledger, "index")
    publish = step(wf, ledger, "publish", waits_for=[index])
    handle, outcome = finish(wf, f"propagation_{tolerant}",
                             [extract, clean, load, archive, index, publish])
    found = statuses(handle)
    assert found["clean"] == WorkflowTaskStatus.SKIPPED
    assert found["index"] == found["publish"] == WorkflowTaskStatus.COMPLETED
    assert outcome.is_err() and outcome.err_value.error_code == "STEP_FAILED"
    assert outcome.err_value.message == "extract failed"
    if tolerant:
        assert handle.result_for(archive).ok_value == "err:STEP_FAILED"
        assert handle.result_for(load).ok_value == f"err:{OutcomeCode.UPSTREAM_SKIPPED}"
    else:
        assert found["archive"] == found["load"] == WorkflowTaskStatus.SKIPPED
        assert not {"archive", "load"} & set(runs_of(ledger))


def test_recovery_handler_with_a_success_policy(wf: Any, worker: Any, ledger: str) -> None:
    model = step(wf, ledger, "model", fail=True)
    final = TaskNode(fn=wf.wf_inspect, kwargs={"ledger": ledger, "label": "final"},
                     waits_for=[model], args_from={"seen": model}, allow_failed_deps=True,
                     node_id="final")
    policy = SuccessPolicy(cases=[SuccessCase(required=[final])], optional=[model])
    handle, outcome = finish(wf, "recovery", [model, final], output=final,
                             success_policy=policy)
    assert outcome.is_ok(), outcome
    assert outcome.ok_value == "err:STEP_FAILED"
    assert handle.status().unwrap() == WorkflowStatus.COMPLETED


@pytest.mark.parametrize("seed", range(4))
def test_random_dags_end_as_the_oracle_says(wf: Any, worker: Any, ledger: str,
                                            seed: int) -> None:
    """workflows.md §16.8: real runs agree with the in-memory simulation."""
    rng = random.Random(seed)
    shape, outcomes = random_dag(rng, 14)
    handle, _ = finish(wf, f"random_{seed}", build(wf, ledger, shape, outcomes))
    expected = simulate(shape, outcomes)
    found = statuses(handle)
    assert [found[f"n{i}"] for i in range(len(shape))] == list(expected.statuses)
    assert handle.status().unwrap() == WorkflowStatus(expected.status)
    ran = runs_of(ledger)
    assert all(count == 1 for count in ran.values()), ran
    assert set(ran) == {f"n{i}" for i, s in enumerate(expected.statuses)
                        if s != WorkflowTaskStatus.SKIPPED}
