#!/usr/bin/env bash
# Installs those of the named Debian packages that are not installed yet (apt-get, as
# root); does nothing when all are there. Used by setup.sh and package.sh.
#   scripts/apt-missing.sh NAME PKG...     NAME prefixes the messages
#   APT_NO_INSTALL=1 ...                   only report what is missing (exit 1)
set -euo pipefail
name=$1
shift

missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "$name: all packages present"
  exit 0
fi
if [[ -n ${APT_NO_INSTALL:-} || $(id -u) -ne 0 ]]; then
  echo "$name: missing packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi
echo "$name: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
