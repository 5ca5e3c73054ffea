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

if [[ -n ${SETUP_NO_BUILD:-} ]]; then
  exit 0
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPATHD_WERROR=ON
cmake --build build -j"$jobs"
