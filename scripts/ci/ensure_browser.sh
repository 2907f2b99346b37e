#!/usr/bin/env bash
# Installs the browser the real-browser contract test drives (tests/browser): Debian's Chromium and
# its matching chromedriver. Both come from the same source package, so their versions always agree
# and nothing is downloaded outside apt. Idempotent: does nothing when both are already present.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "browser: $(chromium --version 2>/dev/null || echo chromium) / $(chromedriver --version | cut -d' ' -f1-2)"
  exit 0
fi

echo "browser: installing chromium and chromium-driver"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
echo "browser: $(chromium --version) / $(chromedriver --version | cut -d' ' -f1-2)"
