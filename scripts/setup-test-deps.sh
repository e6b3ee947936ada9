#!/usr/bin/env bash
# What only the tests need beyond the Python extras: Debian's Chromium for the browser tests
# (Playwright drives it through executable_path; Playwright's own browser download is not used).
set -euo pipefail
PY="${1:-python3}"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "warning: chromium is not installed and apt-get is not usable here; browser tests will be skipped" >&2
  fi
fi
"$PY" -c "import playwright" && echo "test dependencies ready"
