#!/usr/bin/env bash
# Installs what the scale-out drills run on: Slurm (slurmctld, slurmd, client commands), MUNGE and GNU parallel,
# and records in $VIT_SCALEOUT_MARKER (default /var/lib/vit-scaleout/installed) that this script installed Slurm.
# drill.sh starts its cluster only when that record exists: on a machine whose Slurm came from elsewhere (a real
# cluster's node) it starts no daemons. Debian's maintainer scripts would start the system's slurmctld/slurmd/
# munge services; a temporary policy-rc.d (only when the machine has none) stops that, so the drills' own daemons
# are the only ones running.
# Exit status: 0 ready (the record exists), 3 Slurm was installed by something else (only GNU parallel and jq are
# then installed), 1 installation failed.
set -euo pipefail
packages=(slurm-wlm munge parallel jq)
marker=${VIT_SCALEOUT_MARKER:-/var/lib/vit-scaleout/installed}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
foreign=0
if installed slurm-wlm && [[ ! -f $marker ]]; then
    echo "scaleout setup: slurm-wlm was installed by something else than tests/scaleout/setup.sh ($marker" \
        "missing): this machine may run Slurm itself, so the drill starts no cluster here" >&2
    foreign=1
    packages=(parallel jq)
fi
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then
    ((foreign)) && exit 3
    echo "scaleout setup: ${packages[*]} already installed (Slurm by this script: $marker)" >&2
    exit 0
fi
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
((foreign)) && exit 3
$sudo mkdir -p "$(dirname "$marker")"
printf 'installed by tests/scaleout/setup.sh on %s: %s\n' "$(date -u +%FT%TZ)" "${missing[*]}" |
    $sudo tee "$marker" >/dev/null
