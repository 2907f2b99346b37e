#!/usr/bin/env bash
# Starts PostgreSQL, Redis and RabbitMQ on this machine if they are not answering (CI machines
# start them before the run; this covers a machine where one has stopped).
set -euo pipefail

wait_for() {  # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name: up"; return 0; fi
    sleep 1
  done
  echo "$name: still not answering after 60 s" >&2
  return 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  echo "postgresql: starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
wait_for postgresql pg_isready -h 127.0.0.1 -p 5432

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "redis: starting"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "rabbitmq: starting"
  rabbitmq-server -detached || true
fi
wait_for rabbitmq rabbitmq-diagnostics -q check_port_connectivity

# The location service's migration creates cube + earthdistance (docs/location.md): they ship with
# postgresql-contrib, which a bare server install may lack.
has_earthdistance() {
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_available_extensions WHERE name = 'earthdistance'" | grep -q 1
}
if ! has_earthdistance; then
  echo "postgresql: installing postgresql-contrib for cube + earthdistance"
  apt-get update -qq && apt-get install -y -qq "postgresql-contrib-$(ls /etc/postgresql)" || true
fi
if ! has_earthdistance; then
  echo "postgresql: the earthdistance extension is missing; install postgresql-contrib" >&2
  exit 1
fi
echo "postgresql: cube + earthdistance available"
