#!/usr/bin/env bash
# A guided failover demo in network namespaces (root): builds, then runs tests/lab/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPATHD_BIN=${MPATHD_BIN:-$PWD/build/mpathd/mpathd}
export FLOWTOOL_BIN=${FLOWTOOL_BIN:-$PWD/build/tests/tools/flowtool}
exec /usr/bin/python3 tests/lab/demo.py "$@"
