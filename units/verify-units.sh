#!/usr/bin/env bash
# Checks the unit files with systemd-analyze verify, against the binary just built.
# systemd-analyze exits 0 on many problems (an unknown Type=, a bad option value) and
# only prints them, so any output is a failure.
#   verify-units.sh SOURCE_DIR MPATHD_BINARY_DIR
set -euo pipefail
src=$1
bindir=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$src"/*.service.in; do
  sed -e "s|@MPATHD_SBINDIR@|$bindir|g" -e "s|@MPATHD_SYSCONFDIR@|/etc|g" "$f" >"$tmp/$(basename "$f" .in)"
done
cp "$tmp/mpathd@.service" "$tmp/mpathd@lab.service"
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./mpathd.service ./mpathd@lab.service 2>&1) || {
  echo "$out"
  exit 1
}
if [[ -n $out ]]; then
  echo "$out"
  exit 1
fi
echo "units verified"
