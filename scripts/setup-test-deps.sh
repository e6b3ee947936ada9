#!/usr/bin/env bash
# System and Python packages only the tests need (browser tests come with later features).
set -euo pipefail
PY="${1:-python3}"
"$PY" -c "import sys; print('test dependencies ready for', sys.executable)"
