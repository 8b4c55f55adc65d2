#!/usr/bin/env bash
# Checks a Dockerfile against the hadolint rules this project relies on (Debian 12 ships no Dockerfile linter):
# DL3006/DL3007 every FROM a tagged debian:12 image, never latest; DL3015 apt-get install with
# --no-install-recommends and -y; DL3009 the runtime stage deletes /var/lib/apt/lists; DL3002 the last stage runs
# as a non-root USER; DL3022 COPY --from names an earlier stage; DL3020 no ADD; DL3004 no sudo; DL3003 no cd in
# RUN (WORKDIR instead); and every COPY source exists in the build context. Prints each problem with its line.
# Usage: scripts/docker/lint.sh [DOCKERFILE]   (default: Dockerfile at the repository root; exit 1 on problems)
set -euo pipefail
file=${1:-$(dirname "$0")/../../Dockerfile}
context=$(dirname "$file")
problems=0
bad() { echo "$file:$1: $2 ($3)"; problems=$((problems + 1)); }
stages=()    # names of the stages before the current one
current=""
stage_line=0
user=""
apt_lists_removed=0
apt_used=0
end_stage() {
    ((stage_line)) || return 0
    if ((apt_used && ! apt_lists_removed)) && [[ $1 == last ]]; then
        bad "$stage_line" "DL3009" "the runtime stage installs with apt-get but never deletes /var/lib/apt/lists"
    fi
}
# Logical lines: continuation backslashes joined, comments and blank lines dropped; "N<TAB>instruction".
while IFS=$'\t' read -r n line; do
    instr=${line%% *}
    instr=${instr^^}
    args=${line#* }
    case $instr in
        FROM)
            end_stage middle
            stage_line=$n user="" apt_lists_removed=0 apt_used=0
            image=${args%% *}
            [[ $image =~ ^debian:12(-slim)?$ ]] || bad "$n" "DL3006/DL3007" "base image $image: expected a tagged debian:12 image"
            [[ -n $current ]] && stages+=("$current")
            current=""
            [[ $args =~ [[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+) ]] && current=${BASH_REMATCH[1]} ;;
        RUN)
            if [[ $args =~ apt-get[[:space:]]+install ]] || [[ $args =~ xargs.*apt-get[[:space:]]+install ]]; then
                apt_used=1
                [[ $args == *--no-install-recommends* ]] || bad "$n" "DL3015" "apt-get install without --no-install-recommends"
                [[ $args =~ apt-get[[:space:]]+install[[:space:]]+(.*[[:space:]])?-y ]] || bad "$n" "DL3014" "apt-get install without -y"
            fi
            [[ $args == *"rm -rf /var/lib/apt/lists"* ]] && apt_lists_removed=1
            [[ $args =~ (^|[;&|[:space:]])sudo[[:space:]] ]] && bad "$n" "DL3004" "sudo in RUN"
            [[ $args =~ (^|[;&|][[:space:]]*)cd[[:space:]] ]] && bad "$n" "DL3003" "cd in RUN: use WORKDIR" ;;
        USER) user=${args%%:*} ;;
        ADD) bad "$n" "DL3020" "ADD: use COPY" ;;
        COPY)
            if [[ $args =~ --from=([^[:space:]]+) ]]; then
                from=${BASH_REMATCH[1]}
                printf '%s\n' "${stages[@]}" | grep -qx -- "$from" ||
                    bad "$n" "DL3022" "COPY --from=$from: no earlier stage of that name"
            else
                read -r -a words <<<"$args"
                for src in "${words[@]:0:${#words[@]}-1}"; do
                    [[ $src == --* ]] && continue
                    [[ -e $context/$src ]] || bad "$n" "COPY" "source $src is not in the build context"
                done
            fi ;;
    esac
done < <(awk '
    { sub(/\r$/, "") }
    /^[[:space:]]*#/ && !cont { next }
    /^[[:space:]]*$/ && !cont { next }
    { if (!cont) { start = NR; buf = "" } line = $0; sub(/^[[:space:]]+/, "", line)
      if (line ~ /\\$/) { sub(/\\$/, "", line); buf = buf line " "; cont = 1; next }
      buf = buf line; cont = 0; printf "%d\t%s\n", start, buf }' "$file")
end_stage last
((stage_line)) || bad 1 "DL3061" "no FROM"
if [[ -z $user || $user == root || $user == 0 ]]; then
    bad "$stage_line" "DL3002" "the last stage runs as root: add a USER that is not root"
fi
((problems == 0)) || { echo "$problems problem(s)"; exit 1; }
echo "$file: ok (final USER $user)"
