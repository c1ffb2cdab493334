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
# two workers (pytest-xdist), each test file whole on one (its module fixtures, a Ray head on a
# fixed port, stay together), each worker with a sound server of its own (tests/conftest.py);
# CSM_TEST_WORKERS=0 runs in this process alone
python -m pytest -n "${CSM_TEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
exit $rc
