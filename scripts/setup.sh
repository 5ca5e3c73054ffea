#!/usr/bin/env bash
# Installs mpathd's build and test dependencies (Debian 12, as root) and builds into
# build/ with warnings as errors. Idempotent: apt-get runs only when a package is missing.
#   scripts/setup.sh            install + configure + build
#   SETUP_NO_BUILD=1 scripts/setup.sh   install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libnl-3-dev libnl-route-3-dev libsystemd-dev libspdlog-dev
  libgtest-dev libgmock-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev prometheus-cpp-dev
  libnftables-dev  # lib/net: mpathd's own nftables table for shared-address release
  clang libbpf-dev bpftool  # lib/cluster: the eBPF registry programs (clang -target bpf, skeleton)
  iproute2 nftables conntrack iputils-ping
  python3 python3-pytest
  dbus groff-base man-db
  clang-16 libclang-rt-16-dev  # the fuzz build (libFuzzer; clang 14 cannot compile <expected>)
)

bash scripts/apt-missing.sh setup "${PACKAGES[@]}"

# The cluster tier (label `cluster`): ocf-tester (resource-agents; xmllint checks the
# agent's meta-data), Pacemaker and Corosync (run only inside the tests' namespaces)
# and their command-line tools; iputils-arping for the stock ocf:heartbeat:ethmonitor
# that bench/cluster.py compares with (its probe refuses to run without arping).
# The postinst of pacemaker and corosync would start both
# daemons on this host with Debian's default corosync.conf. A policy-rc.d that exits 101 makes invoke-rc.d deny
# every start while apt-get runs (shared/reference/pacemaker-lab.md); one that is
# there already and denies is kept, any other is put back afterwards.
CLUSTER_PACKAGES=(resource-agents libxml2-utils pacemaker corosync pacemaker-cli-utils libcpg-dev
                  iputils-arping)
policy=/usr/sbin/policy-rc.d
if ! APT_NO_INSTALL=1 bash scripts/apt-missing.sh setup-cluster "${CLUSTER_PACKAGES[@]}" >/dev/null 2>&1; then
  saved=""
  if [[ -e $policy ]]; then
    saved=$(mktemp)
    cp -p "$policy" "$saved"
  fi
  restore_policy() {
    if [[ -n $saved ]]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\n# mpathd setup: no service starts while packages are installed.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  bash scripts/apt-missing.sh setup-cluster "${CLUSTER_PACKAGES[@]}"
  restore_policy
  trap - EXIT
fi

if [[ -n ${SETUP_NO_BUILD:-} ]]; then
  exit 0
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPATHD_WERROR=ON
cmake --build build -j"$jobs"
