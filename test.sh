#!/usr/bin/env bash
# Run every test: make the virtual environment if needed, install the test
# requirements, Chromium (for the browser tests) and PostgreSQL (for the store
# tests on PostgreSQL; BUILDMON_TEST_POSTGRES=0 leaves it out), then pytest.
# Arguments are passed to pytest (e.g. ./test.sh -k webhook); the tests run on
# every core (TEST_WORKERS, default auto; -n 0 in the arguments runs them in one process).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv requirements-test.txt
ensure_chromium
ensure_postgresql
set +e
"$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-auto}" --dist loadgroup "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "pytest collected no tests: failing, since a test run that tests nothing must not pass" >&2
  exit 1
fi
exit $code
