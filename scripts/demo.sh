#!/usr/bin/env bash
# Guided demos in network namespaces (root): builds, then runs
#   scripts/demo.sh [ARGS]          tests/lab/demo.py: one host, a cut cable, the address moving
#   scripts/demo.sh cluster [ARGS]  tests/lab/cluster_demo.py: a 3-node Pacemaker cluster, a
#                                   whole-group failure on n1, the address and the client on n2
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPATHD_BIN=${MPATHD_BIN:-$PWD/build/mpathd/mpathd}
export FLOWTOOL_BIN=${FLOWTOOL_BIN:-$PWD/build/tests/tools/flowtool}
export IPMPCTL_BIN=${IPMPCTL_BIN:-$PWD/build/ipmpctl/ipmpctl}
if [[ ${1:-} == cluster ]]; then
  shift
  exec /usr/bin/python3 tests/lab/cluster_demo.py "$@"
fi
exec /usr/bin/python3 tests/lab/demo.py "$@"
