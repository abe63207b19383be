#!/usr/bin/env bash
# Start PostgreSQL and Redis on loopback if they are not already up (the test suite uses both).
set -uo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! up 6379; then
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
fi
for _ in $(seq 1 50); do
  if up 5432 && up 6379; then exit 0; fi
  sleep 0.2
done
up 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will be skipped" >&2
up 6379 || echo "warning: Redis is not reachable on 127.0.0.1:6379; its tests will be skipped" >&2
exit 0
