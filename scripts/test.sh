#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy) and pytest on SQLite, PostgreSQL and Redis.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/engine -x).
source "$(dirname "$0")/_setup.sh"
bash scripts/services.sh
export HUB_TEST_POSTGRES_URL="${HUB_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export HUB_TEST_REDIS_URL="${HUB_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
echo "== ruff"
.venv/bin/ruff check hub connectors tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
