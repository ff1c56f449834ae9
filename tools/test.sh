#!/usr/bin/env bash
# The test command of horsies (README.md): the whole suite with the compiled
# twins required, then the unit, speedups and integration tests on the
# pure-Python twins. Extra arguments go to both pytest runs.
#
# Uses the active virtual environment, else ./.venv when present. The database
# is HORSIES_TEST_DATABASE_URL when set, else an embedded server per run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

status=0

echo "== compiled twins (HORSIES_TEST_EXPECT_IMPL=c): whole suite"
HORSIES_TEST_EXPECT_IMPL=c python -m pytest "$@" || status=$?

echo "== pure-Python twins (HORSIES_NO_EXTENSIONS=1): unit, speedups, integration"
env -u HORSIES_TEST_EXPECT_IMPL HORSIES_NO_EXTENSIONS=1 python -m pytest tests/unit tests/speedups tests/integration -q "$@" \
    || status=$?

exit "$status"
