#!/usr/bin/env bash
# Builds the Debian package out of tree and checks it: installs what dpkg-buildpackage
# and lintian need (only what is missing), copies the source to a temporary directory
# (the worktree stays clean), runs `dpkg-buildpackage -us -uc -b`, lintian, and checks
# that the .deb holds every file the package must ship. The package is never installed.
#   scripts/package.sh              build + check; the .deb is left in $PACKAGE_OUT
#                                   (default build-deb/) for inspection
#   PACKAGE_NO_INSTALL=1 ...        do not apt-get anything (fail if something is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=${PACKAGE_OUT:-$src/build-deb}

# The tools; the Build-Depends come from debian/control (dpkg-checkbuilddeps).
TOOLS=(dpkg-dev debhelper lintian fakeroot)

APT_NO_INSTALL=${PACKAGE_NO_INSTALL:-} bash scripts/apt-missing.sh package "${TOOLS[@]}"
# Build-Depends that are not there yet (dpkg-checkbuilddeps names them, with versions).
deps=$(dpkg-checkbuilddeps debian/control 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
  sed -e 's/([^)]*)//g' -e 's/|[^ ]*//g')
if [[ -n ${deps// /} ]]; then
  # shellcheck disable=SC2086 # one word per package
  APT_NO_INSTALL=${PACKAGE_NO_INSTALL:-} bash scripts/apt-missing.sh package $deps
fi
dpkg-checkbuilddeps debian/control

# A fixed directory (one run at a time, under a lock) so that ccache, when installed,
# finds the objects of the previous run: the compiler sees the same paths.
work=${TMPDIR:-/tmp}/mpathd-package
exec 9>"$work.lock"
flock -w 1800 9 || {
  echo "package: another package build holds $work.lock" >&2
  exit 1
}
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
if [[ -d /usr/lib/ccache ]]; then
  export PATH=/usr/lib/ccache:$PATH
fi
# The tracked files only (plus uncommitted edits to them): no build trees, no caches.
mkdir "$work/mpathd"
git ls-files -z --cached --others --exclude-standard | grep -zv '^build' |
  xargs -0 cp --parents -t "$work/mpathd" 2>/dev/null || {
  echo "package: cannot copy the source tree" >&2
  exit 1
}

jobs=$(nproc 2>/dev/null || echo 2)
echo "package: dpkg-buildpackage in $work"
(cd "$work/mpathd" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log"
  echo "package: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
deb=$(ls "$work"/mpathd_*.deb)
changes=$(ls "$work"/mpathd_*.changes)

status=0
echo "package: lintian $(basename "$changes")"
# Errors and warnings fail; info/pedantic tags are printed for the record.
if ! lintian --fail-on error,warning --info --display-info "$changes"; then
  echo "package: lintian found problems" >&2
  status=1
fi

# Contents: every path the package must ship (dpkg-deb -c prints ./usr/sbin/mpathd ...).
expected=(
  ./usr/sbin/mpathd
  ./usr/sbin/ipmpctl
  ./lib/systemd/system/mpathd.service
  ./lib/systemd/system/mpathd@.service
  ./usr/share/dbus-1/system.d/org.ipmp.Mpathd1.conf
  ./usr/share/dbus-1/system-services/org.ipmp.Mpathd1.service
  ./usr/share/dbus-1/interfaces/org.ipmp.Mpathd1.xml
  ./usr/share/man/man5/mpathd.conf.5.gz
  ./usr/share/man/man8/mpathd.8.gz
  ./usr/share/man/man8/ipmpctl.8.gz
  ./usr/share/man/man7/ocf_mpathd_SharedAddress.7.gz
  ./usr/share/man/man7/mpathd-hooks.7.gz
  ./usr/libexec/mpathd/mpathd-hookhost
  ./usr/share/bash-completion/completions/ipmpctl
  ./usr/share/doc/mpathd/examples/mpathd.conf
  ./usr/lib/ocf/resource.d/mpathd/SharedAddress
  ./usr/share/doc/mpathd/copyright
)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in "${expected[@]}"; do
  if ! grep -qxF -- "$f" <<<"$contents"; then
    echo "package: missing from $(basename "$deb"): $f" >&2
    status=1
  fi
done
# The hook ABI in mpathd-dev: its header and pkg-config file.
dev=$(ls "$work"/mpathd-dev_*.deb 2>/dev/null || true)
if [[ -z $dev ]]; then
  echo "package: mpathd-dev was not built" >&2
  status=1
else
  dev_contents=$(dpkg-deb -c "$dev" | awk '{print $6}')
  for f in ./usr/include/mpathd/hook.h; do
    grep -qxF -- "$f" <<<"$dev_contents" || { echo "package: missing from $(basename "$dev"): $f" >&2; status=1; }
  done
  grep -q '/pkgconfig/mpathd-hook\.pc$' <<<"$dev_contents" ||
    { echo "package: missing from $(basename "$dev"): mpathd-hook.pc" >&2; status=1; }
fi
# Nothing may start on its own with the example: no /etc/mpathd/mpathd.conf.
if grep -q '^\./etc/mpathd/mpathd\.conf$' <<<"$contents"; then
  echo "package: ships /etc/mpathd/mpathd.conf (it must not; see debian/rules)" >&2
  status=1
fi
# The units point at the installed daemon.
if ! dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/mpathd.service |
  grep -q '^ExecStart=/usr/sbin/mpathd '; then
  echo "package: mpathd.service does not start /usr/sbin/mpathd" >&2
  status=1
fi

mkdir -p "$out"
cp "$deb" $dev "$changes" "$out/"
dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
echo "package: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB, ${#expected[@]} expected files checked) in $out"
exit $status
