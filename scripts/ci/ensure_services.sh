#!/usr/bin/env bash
# Starts PostgreSQL, Redis and RabbitMQ on this machine if they are not answering, installing
# Debian's packages first where a server is missing (a fresh CI container: .github/workflows/ci.yml
# runs the jobs in debian:bookworm, the same system as a CI machine). The real-mode suite needs the
# server binaries too, not only a server on the standard port: its fault tests start private
# PostgreSQL, Redis and RabbitMQ instances (tests/support/private.py).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

wait_for() {  # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name: up"; return 0; fi
    sleep 1
  done
  echo "$name: still not answering after 60 s" >&2
  return 1
}

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmqctl ] || missing+=(rabbitmq-server)
fresh_postgres=false
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  [[ " ${missing[*]} " == *" postgresql "* ]] && fresh_postgres=true
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

pg_version=$(basename "$(compgen -G "/etc/postgresql/*" | sort -V | tail -1)")
if $fresh_postgres; then
  # Only a cluster this script has just installed: the tests connect as postgres over loopback
  # without a password (tests/conftest.py). A machine's existing server is never reconfigured.
  hba=/etc/postgresql/$pg_version/main/pg_hba.conf
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | as_root tee "$hba" >/dev/null
fi

if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  echo "postgresql: starting"
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
fi
wait_for postgresql pg_isready -h 127.0.0.1 -p 5432

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "redis: starting"
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

if ! as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "rabbitmq: starting"
  as_root rabbitmq-server -detached || true
fi
wait_for rabbitmq as_root rabbitmq-diagnostics -q check_port_connectivity

# The location service's migration creates cube + earthdistance (docs/location.md): they ship with
# postgresql-contrib, which a bare server install may lack.
has_earthdistance() {
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_available_extensions WHERE name = 'earthdistance'" | grep -q 1
}
if ! has_earthdistance; then
  echo "postgresql: installing postgresql-contrib for cube + earthdistance"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-contrib-$pg_version" || true
fi
if ! has_earthdistance; then
  echo "postgresql: the earthdistance extension is missing; install postgresql-contrib" >&2
  exit 1
fi
echo "postgresql: cube + earthdistance available"
