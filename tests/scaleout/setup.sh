#!/usr/bin/env bash
# Installs what the scale-out drills run on: Slurm (slurmctld, slurmd, client commands), MUNGE and GNU parallel.
# Debian's maintainer scripts would start the system's slurmctld/slurmd/munge services; a temporary policy-rc.d
# (only when the machine has none) stops that, so the drills' own daemons are the only ones running.
set -euo pipefail
packages=(slurm-wlm munge parallel jq)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || { echo "scaleout setup: ${packages[*]} already installed" >&2; exit 0; }
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    made_policy=1
fi
trap '((made_policy)) && $sudo rm -f "$policy"' EXIT
echo "scaleout setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
