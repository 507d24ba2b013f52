#!/usr/bin/env bash
# The whole test suite: project checks (ruff, mypy --strict, import-linter) and pytest.
# Installs and starts the real components the tests need (sshd, dockerd, busybox image,
# nats-server) when it runs as root; see tests/components.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
step() { echo "== $*"; }

if [ "$(id -u)" = 0 ] && [ -f tests/components.sh ]; then
  step "components"
  bash tests/components.sh || status=1
fi

step "ruff format --check"; python3 -m ruff format --check . || status=1
step "ruff check"; python3 -m ruff check . || status=1
step "mypy --strict"; python3 -m mypy || status=1
step "import-linter"; lint-imports || status=1

step "pytest"
python3 -m pytest -n "${DEVSTER_TEST_WORKERS:-2}" -q -p no:cacheprovider "$@"
rc=$?
# Exit 5 (no tests collected) is a failure here: a suite that runs nothing proves nothing.
if [ $rc -ne 0 ]; then status=$rc; fi
exit $status
