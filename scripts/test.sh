#!/usr/bin/env bash
# Builds and runs every test tier: all CTest labels in build/ (integration needs root),
# the long ones (label long) in a step of their own, builds and checks the Debian package
# (scripts/package.sh), then the unit tests again under ASan/UBSan in build-asan/, then
# the fuzz targets (label fuzz) for a short time each in build-fuzz/ (clang, libFuzzer).
# Prints one summary line and
# exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
declare -a results=()
failed=0

step() {  # step NAME COMMAND...
  local name=$1
  shift
  echo "==== $name: $*"
  if "$@"; then
    results+=("$name: ok")
  else
    results+=("$name: FAILED")
    failed=$((failed + 1))
  fi
}

step setup bash scripts/setup.sh
if [[ ${results[-1]} == *FAILED ]]; then
  echo "test.sh: setup failed; nothing else can run"
  echo "SUMMARY: 0 passed, 1 failed"
  exit 1
fi

step ctest ctest --test-dir build --output-on-failure -j1 --timeout 900 -LE long
# Long or load-sensitive tests (label `long`), reported apart.
step long ctest --test-dir build --output-on-failure -j1 --timeout 900 -L long

# The Debian package: dpkg-buildpackage out of tree, lintian, expected contents
# (never installed here).
step package bash scripts/package.sh

step asan-build bash -c "cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMPATHD_WERROR=ON \
  -DMPATHD_SANITIZE=ON && cmake --build build-asan -j$jobs --target unit_tests ipmpctl_unit_tests mpathd"
if [[ ${results[-1]} == *ok ]]; then
  step asan-unit env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -L unit -j"$jobs"
fi

# Fuzzing: only the fuzz targets are built (clang 16 + libFuzzer/ASan/UBSan); each runs
# FUZZ_SECONDS (default 10) on its seed corpus (bench/fuzz.sh: 10^7 executions each).
step fuzz-build bash -c "cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPATHD_FUZZ=ON \
  -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16 -DMPATHD_FUZZ_SECONDS=${FUZZ_SECONDS:-10} \
  && cmake --build build-fuzz -j$jobs --target fuzz_targets"
if [[ ${results[-1]} == *ok ]]; then
  step fuzz ctest --test-dir build-fuzz --output-on-failure -L fuzz -j1
fi

echo
echo "==== results"
for r in "${results[@]}"; do echo "  $r"; done
passed=$((${#results[@]} - failed))
echo "SUMMARY: ${passed} passed, ${failed} failed"
exit $((failed > 0))
