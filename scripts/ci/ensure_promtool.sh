#!/usr/bin/env bash
# Installs promtool, which unit-tests the alert rules (tests/observability: `promtool test rules`).
# It comes with Debian's `prometheus` package (nothing downloaded outside apt). The package's
# service is not started: only the binary is used. Idempotent: does nothing when promtool exists.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  echo "promtool: $(promtool --version 2>&1 | head -1)"
  exit 0
fi

echo "promtool: installing Debian's prometheus package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the package's Prometheus server from being started on install (one of our own,
# removed afterwards, only when the machine has none).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends prometheus
echo "promtool: $(promtool --version 2>&1 | head -1)"
