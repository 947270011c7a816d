#!/usr/bin/env bash
# npm test's pretest: the Debian packages of debian-packages.txt (beside this script) must be
# installed. Run as root (CI, a fresh container) it installs the missing ones; otherwise it stops
# at once with the one line to run. Installs nothing that is already there; downloads only
# Debian's packages, through apt.
set -euo pipefail

LIST="${DEBIAN_PACKAGES_LIST:-$(dirname "$0")/debian-packages.txt}"
die() { echo "npm test: $*" >&2; exit 1; }

[ -r "$LIST" ] || die "cannot read $LIST"
command -v dpkg-query >/dev/null || die "dpkg-query not found: the tests need a Debian machine (Debian 12)"

packages=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  read -r -a words <<< "${line%%#*}"
  [ ${#words[@]} -gt 0 ] || continue
  if [ ${#words[@]} -ne 1 ] || ! [[ "${words[0]}" =~ ^[a-z0-9][a-z0-9+.-]+$ ]]; then
    die "$LIST line $n: '${line%%#*}' is not one Debian package name"
  fi
  packages+=("${words[0]}")
done < "$LIST"

# One query for all (dpkg-query exits 1 when it knows a name not at all; what it printed stands).
# "install ok installed" only: a package removed with its config left ("deinstall ok config-files") is missing.
installed=$(dpkg-query -W -f='${Package}\t${Status}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
  grep -qxF "$p"$'\t'"install ok installed" <<< "$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "npm test: missing Debian packages: ${missing[*]} (from $LIST). Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "npm test: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
