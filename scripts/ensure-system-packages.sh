#!/usr/bin/env bash
# Make sure the named Debian/Ubuntu packages are installed.
#
#   scripts/ensure-system-packages.sh PACKAGE...
#
# Missing packages are installed with apt-get when running as root; otherwise the exact command is printed and the
# script fails. Quick (one dpkg-query) when everything is there. On a system without dpkg it only warns.
set -euo pipefail

log() { printf 'ensure-system-packages: %s\n' "$*" >&2; }

[ $# -gt 0 ] || exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
  log "not a Debian-like system: make sure these (or their equivalents) are installed: $*"
  exit 0
fi

missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed: ${missing[*]}"
else
  log "ERROR: missing system packages: ${missing[*]}"
  log "install them as root, then run this again:"
  printf '\n    sudo sh -c '\''%s'\''\n\n' "$cmd" >&2
  exit 1
fi
