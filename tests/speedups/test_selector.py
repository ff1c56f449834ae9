"""horsies._speedups picks one implementation for every hot path, once, at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import horsies._speedups as speedups
from tests.speedups.conftest import compiled_or_reason

FUNCTIONS = {
    "effective_max_claimed": "budget",
    "compute_pass_budget": "budget",
    "queue_claim_limit": "claim_plan",
    "order_queues": "claim_plan",
    "plan_pass": "claim_plan",
    "Codec": "codec",
    "evaluate_readiness": "dag_ready",
    "evaluate_readiness_many": "dag_ready",
}

_REPORT = textwrap.dedent(
    """
    import json, horsies._speedups as s
    print(json.dumps({
        "impl": s.IMPL, "error": s.IMPL_ERROR, "off": s.NO_EXTENSIONS,
        "modules": {name: getattr(s, name).__module__ for name in %r},
    }))
    """
    % sorted(FUNCTIONS)
)


def run_selector(env_value: str | None, prelude: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORSIES_")}
    if env_value is not None:
        env["HORSIES_NO_EXTENSIONS"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", prelude + _REPORT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", "ON", " on "])
def test_switch_turns_extensions_off(value):
    report = run_selector(value)
    assert report == {
        "impl": "python",
        "error": None,
        "off": True,
        "modules": {name: f"horsies._speedups.{twin}_py" for name, twin in FUNCTIONS.items()},
    }


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off", "2", "y"])
def test_other_values_leave_extensions_on(value):
    compiled, reason = compiled_or_reason()
    report = run_selector(value)
    assert report["off"] is False
    if compiled is None:
        assert report["impl"] == "python" and report["error"]
        pytest.skip(reason)
    assert report["impl"] == "c" and report["error"] is None
    assert report["modules"] == {
        name: f"horsies._speedups.{twin}_c" for name, twin in FUNCTIONS.items()
    }


@pytest.mark.parametrize("broken", ["codec_c", "dag_ready_c"])
def test_selection_is_all_or_nothing(broken):
    # One compiled twin that fails to import sends every hot path to Python.
    prelude = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "horsies._speedups.{broken}":
                    raise ImportError("{broken} is broken")
        sys.meta_path.insert(0, Block())
        """
    )
    report = run_selector(None, prelude)
    assert report["impl"] == "python"
    assert report["error"] == f"ImportError: {broken} is broken"
    assert report["modules"] == {
        name: f"horsies._speedups.{twin}_py" for name, twin in FUNCTIONS.items()
    }


def test_switch_is_read_once(monkeypatch):
    before = (speedups.IMPL, speedups.NO_EXTENSIONS, speedups.compute_pass_budget)
    monkeypatch.setenv("HORSIES_NO_EXTENSIONS", "0" if speedups.NO_EXTENSIONS else "1")
    import horsies._speedups as again

    assert (again.IMPL, again.NO_EXTENSIONS, again.compute_pass_budget) == before


def test_published_names():
    assert speedups.IMPL in ("c", "python")
    assert speedups.IMPL_ERROR is None or isinstance(speedups.IMPL_ERROR, str)
    suffix = "c" if speedups.IMPL == "c" else "py"
    for name, twin in FUNCTIONS.items():
        assert name in speedups.__all__
        assert getattr(speedups, name).__module__ == f"horsies._speedups.{twin}_{suffix}"
    assert speedups.compute_pass_budget(8, 0, 0, None, 5, 2, 0) == 1


def test_twins_publish_the_same_names():
    compiled, reason = compiled_or_reason()
    if compiled is None:
        pytest.skip(reason)
    from tests.speedups.conftest import load_impl

    pure = load_impl("py")
    for attr in ("budget", "claim_plan", "codec_module", "dag_ready"):
        assert getattr(compiled, attr).__all__ == getattr(pure, attr).__all__


@pytest.mark.compiled
def test_expected_implementation_loaded():
    """With HORSIES_TEST_EXPECT_IMPL=c (wheels, CI), a silent fallback fails the suite."""
    expected = os.environ.get("HORSIES_TEST_EXPECT_IMPL", "").strip().lower()
    if expected != "c":
        pytest.skip("HORSIES_TEST_EXPECT_IMPL is not 'c'")
    assert speedups.IMPL == "c", speedups.IMPL_ERROR
    assert not speedups.IMPL_ERROR
