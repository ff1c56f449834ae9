#!/usr/bin/env bash
# The test command of horsies (README.md): the whole suite with the compiled
# twins required, then the unit, speedups, integration and quick-start tests
# on the pure-Python twins. Extra arguments go to both pytest runs.
#
# Uses the active virtual environment, else ./.venv (created and installed
# with the test extras on first use). The database
# is HORSIES_TEST_DATABASE_URL when set, else an embedded server per run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    if [[ ! -f .venv/bin/activate ]]; then
        # A fresh clone: make the environment the README promises.
        "${PYTHON:-python3}" -m venv .venv
        .venv/bin/python -m pip install --upgrade pip
    fi
    # The demo command of the README makes .venv with the embedded extra only:
    # whatever made it, the test extras go in before the first run.
    if ! .venv/bin/python -c "import pytest, pytest_timeout, hypothesis, pgserver, mypy, textual_plotext, horsies" \
            2>/dev/null; then
        .venv/bin/python -m pip install -e '.[test]'
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

status=0

echo "== compiled twins (HORSIES_TEST_EXPECT_IMPL=c): whole suite"
HORSIES_TEST_EXPECT_IMPL=c python -m pytest "$@" || status=$?

echo "== pure-Python twins (HORSIES_NO_EXTENSIONS=1): unit, selector, integration, quick start"
# (the embedded server's own tests run no code that has a twin: once is enough;
# the other tests/speedups modules import both twins directly and already ran
# each of them above, so only the selector's own tests run again here)
env -u HORSIES_TEST_EXPECT_IMPL HORSIES_NO_EXTENSIONS=1 python -m pytest tests/unit \
    tests/speedups/test_selector.py \
    tests/integration tests/e2e/test_quickstart.py --ignore=tests/integration/test_embedded.py \
    -q "$@" || status=$?

exit "$status"
