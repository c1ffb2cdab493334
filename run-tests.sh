#!/usr/bin/env bash
# Set up (first run) and run every check: ruff, mypy, import-linter contracts, then pytest.
# Arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
scripts/setup.sh test
export PATH="$root/.venv/bin:$PATH"
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== import-linter"; lint-imports
echo "== pytest"
set +e
# two workers (pytest-xdist): the sound server's tests stay together on one, each other file on
# one (tests/conftest.py sets the groups); CSM_TEST_WORKERS=0 runs in this process alone
python -m pytest -n "${CSM_TEST_WORKERS:-2}" --dist loadgroup "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
exit $rc
