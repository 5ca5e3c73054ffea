#!/usr/bin/env bash
# Fuzz bench: runs every libFuzzer target of tests/fuzz for RUNS executions (default
# 10^7) and prints a table of executions, time, coverage and findings.
#
#   bash bench/fuzz.sh                 # all targets, 10^7 runs each
#   RUNS=100000 bash bench/fuzz.sh config state
#   MAX_TIME=600 bash bench/fuzz.sh config   # stop each target after 600 s (or RUNS)
#
# Builds build-fuzz/ (clang 16, -DMPATHD_FUZZ=ON) if needed. Each target starts from a
# copy of its seed corpus (tests/fuzz/corpus/<target>/, never modified) in
# build-fuzz/bench-fuzz/<target>/; the log, the grown corpus and any crash, leak or
# timeout input (artifacts/) stay there. libFuzzer stops a target at its first finding,
# so "findings" is 0 or 1 per target; the exit status is 1 if any target found one.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-10000000}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config state netlink probe_reply dbus_args replication_wire)
max_time=${MAX_TIME:-0}
jobs=$(nproc 2>/dev/null || echo 2)
# -max_len per target, as in tests/fuzz/CMakeLists.txt (0: libFuzzer's default).
max_len() { case $1 in dbus_args) echo 512 ;; *) echo 0 ;; esac; }

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16 \
  -DMPATHD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
cmake --build "$build" -j"$jobs" --target fuzz_targets >/dev/null || exit 2

work=$build/bench-fuzz
found=0
rows=()
for t in "${targets[@]}"; do
  dir=$work/$t
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "tests/fuzz/corpus/$t/." "$dir/corpus/"
  echo "fuzz: $t, $runs runs ..." >&2
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/${t}_fuzz" -runs="$runs" -max_total_time="$max_time" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  findings=$(find "$dir/artifacts" -type f | wc -l)
  [[ $rc -ne 0 && $findings -eq 0 ]] && findings="rc=$rc"
  [[ $findings != 0 ]] && found=1
  rows+=("$(printf '%-12s %12s %8s %10s %6s %7s  %s' "$t" "${done_runs:-?}" "$secs" \
    "$(( ${done_runs:-0} / (secs > 0 ? secs : 1) ))" "${cov:-?}" "$corpus" "$findings")")
done

printf '%-12s %12s %8s %10s %6s %7s  %s\n' TARGET EXECUTIONS SECONDS EXEC/S COV CORPUS FINDINGS
printf '%s\n' "${rows[@]}"
echo "logs and artifacts: $work/<target>/"
exit $found
