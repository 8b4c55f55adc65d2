#!/usr/bin/env bash
# The Dockerfile passes scripts/docker/lint.sh, and the lint catches each rule it claims on broken variants.
# Usage: test_dockerfile.sh SOURCE_DIR
set -u
SRC=$1
. "$(dirname "$0")/lib.sh"
LINT=$SRC/scripts/docker/lint.sh

check "the Dockerfile passes the lint" "$LINT" "$SRC/Dockerfile"
# Each variant is the real Dockerfile with one change, in a context that has the same sources.
variant() {   # variant NAME SED_EXPRESSION RULE
    mkdir -p "$work/$1"
    cp -r "$SRC/scripts" "$work/$1/"
    sed "$2" "$SRC/Dockerfile" >"$work/$1/Dockerfile"
    out=$("$LINT" "$work/$1/Dockerfile"); rc=$?
    check_eq "$1: exit 1" "$rc" 1
    check "$1: names $3" grep -q "$3" <<<"$out"
}
variant latest 's/^FROM debian:12-slim/FROM debian:latest/' DL3006
variant recommends 's/ --no-install-recommends//' DL3015
variant root-user '/^USER /d' DL3002
variant lists 's| /var/lib/apt/lists/\*||' DL3009
variant from-typo 's/--from=build/--from=biuld/' DL3022
variant add 's/^COPY \. \./ADD . ./' DL3020
variant cd 's|^RUN scripts/setup.sh|RUN cd /src \&\& scripts/setup.sh|' DL3003
variant missing-src 's/^COPY \. \./COPY nowhere\/ ./' "source nowhere/"
finish
