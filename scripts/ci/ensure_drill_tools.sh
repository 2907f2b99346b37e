#!/usr/bin/env bash
# What the restore drill (make drill, tests/durability) needs besides PyPI: PostgreSQL's server
# binaries (initdb, pg_ctl) and client (psql), and what building psycopg2 for barman-cloud takes
# (a C compiler, libpq's headers, the system Python with its headers: the drill's barman-cloud
# virtualenv is built on /usr/bin/python3 so that the PostgreSQL server user can run it).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v gcc >/dev/null || missing+=(gcc)
command -v pg_config >/dev/null && [ -f "$(pg_config --includedir)/libpq-fe.h" ] || missing+=(libpq-dev)
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 - <<'PY' 2>/dev/null || missing+=(python3-dev)
import sysconfig, pathlib, sys
sys.exit(0 if (pathlib.Path(sysconfig.get_paths()["include"]) / "Python.h").exists() else 1)
PY

if [ ${#missing[@]} -gt 0 ]; then
  echo "drill: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
echo "drill: PostgreSQL server binaries and the build tools for barman-cloud present"
