#!/usr/bin/env bash
# Installs everything the harness needs on a Debian 12 host: the Debian
# packages listed in harness/host-packages.txt (the one list that doctor,
# CI and the Vagrant VM use too), plus tox. Idempotent; run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
list="$here/harness/host-packages.txt"
if [[ $(id -u) -ne 0 ]]; then
	exec sudo "$0" "$@"
fi
mapfile -t packages < <(grep -v '^[[:space:]]*#' "$list" | awk 'NF {print $1}')
packages+=(tox)
export DEBIAN_FRONTEND=noninteractive
missing=()
for package in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$package")
done
if ((${#missing[@]})); then
	echo "setup-host: installing ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "setup-host: all ${#packages[@]} packages present"
fi
