#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy) and pytest on SQLite, PostgreSQL and Redis.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/engine -x).
source "$(dirname "$0")/_setup.sh"
bash scripts/services.sh
export HUB_TEST_POSTGRES_URL="${HUB_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export HUB_TEST_REDIS_URL="${HUB_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
# The console's browser tests drive Debian's chromium through Playwright (never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package) for the console's browser tests"
    apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; } \
      || echo "!! could not install chromium; the browser tests will be skipped"
  else
    echo "!! no chromium: the console's browser tests will be skipped. Install it with" \
         "'sudo apt-get install -y chromium' (Debian/Ubuntu), or point HUB_TEST_CHROMIUM at a Chromium binary."
  fi
fi
echo "== ruff"
.venv/bin/ruff check hub connectors tests bench
echo "== import contracts"
.venv/bin/lint-imports
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Two pytest processes (HUB_TEST_WORKERS, 0 for one): the suite waits on subprocesses and brokers
# more than it computes. Tests whose processes cooperate by the clock share one worker (conftest.py).
.venv/bin/pytest -n "${HUB_TEST_WORKERS:-2}" --dist loadgroup "$@"
