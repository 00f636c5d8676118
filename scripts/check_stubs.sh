#!/usr/bin/env bash
# Checks the type stubs of rollout_trace against the built extension module
# (mypy stubtest) and type-checks the example script strictly through them.
# Needs the package installed (`pip install -e .[test]`). Run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m mypy.stubtest rollout_trace._native --allowlist scripts/stubtest_allowlist.txt
python3 -m mypy --strict examples/api_tour.py
