#!/usr/bin/env bash
# Merges the jsonl parts of a sharded run (Slurm array, GNU parallel, Kubernetes) into one result in the input
# list's order, and checks that every input of the list has exactly one record: missing inputs, duplicate
# records and records of paths not in the list are named, and nothing is written then.
# Usage: merge.sh [-o OUT] LIST PART...
#   LIST  the input list the run was given (--files-from: one path per line; empty lines skipped, a trailing CR
#         dropped, as vit reads it); a path listed twice needs two records
#   PART  jsonl results (vit classify --format jsonl), in any order: e.g. OUTDIR/part-*.jsonl
#   -o    write OUT (through a temporary file renamed into place) instead of stdout
# Exit status: 0 every input has exactly one record; 1 some input has none or more than one, or a record names
# a path not in the list; 2 bad usage or an unreadable or malformed part. Needs jq. The records are held in
# memory while merging (about their size on disk).
set -euo pipefail

say() { echo "merge: $*" >&2; }
usage() { say "usage: merge.sh [-o OUT] LIST PART..."; exit 2; }
out=""
while getopts "o:h" opt; do
    case $opt in
        o) out=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
(($# >= 2)) || usage
list=$1
shift
command -v jq >/dev/null || { say "jq is needed (apt-get install jq)"; exit 2; }
[[ -r $list && -f $list ]] || { say "$list: cannot read the input list"; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every path becomes its JSON string (one line, no tab), the key that list and records are matched by.
jq -R -r 'sub("\r$"; "") | select(length > 0) | tojson' <"$list" >"$work/list.keys" ||
    { say "$list: cannot read the list as text"; exit 2; }
i=0
for part in "$@"; do
    [[ -r $part && -f $part ]] || { say "$part: cannot read this part"; exit 2; }
    i=$((i + 1))
    if ! jq -r 'if type == "object" and (.path | type) == "string" then .path | tojson
                else error("a line that is not a vit jsonl record") end' "$part" >"$work/$i.keys" 2>"$work/err"; then
        say "$part: not a vit jsonl result: $(head -c 300 "$work/err")"
        exit 2
    fi
    if [[ $(wc -l <"$work/$i.keys") != $(wc -l <"$part") ]]; then
        say "$part: blank or unterminated lines (expected one record per line)"
        exit 2
    fi
    printf '%s\n' "$part" >>"$work/names"
    paste -d '\t' "$work/$i.keys" "$part" >"$work/$i.keyed"
done

# awk: the list's keys in order, then every keyed part; checks first, prints only when all inputs are present once.
merged=$work/merged.jsonl
set +e
awk -v names="$work/names" -v merged="$merged" '
    BEGIN { while ((getline line < names) > 0) name[++nparts] = line; FS = "\t" }
    FILENAME ~ /list\.keys$/ { order[++n] = $0; want[$0]++; next }
    {
        np = split(FILENAME, f, "/"); p = f[np]; sub(/\.keyed$/, "", p)
        tab = index($0, "\t"); key = substr($0, 1, tab - 1)
        got[key]++; rec[key, got[key]] = substr($0, tab + 1); records++
        if (!((key, p) in seen)) { seen[key, p] = 1; where[key] = where[key] (where[key] == "" ? "" : ", ") name[p] }
        if (index($0, "\"error\":") > 0) errors++
    }
    function report(kind, line) {
        bad[kind]++
        if (bad[kind] <= 20) print "merge: " kind ": " line > "/dev/stderr"
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]
            if (k in checked) continue
            checked[k] = 1
            if (!(k in got)) report("missing", k " has no record")
            else if (got[k] < want[k]) report("missing", k " is listed " want[k] " times but has " got[k] " record(s) (in " where[k] ")")
            else if (got[k] > want[k]) report("duplicate", k " has " got[k] " records (in " where[k] "), expected " want[k])
        }
        for (k in got) if (!(k in want)) report("not in the list", k " (in " where[k] ")")
        failed = 0
        for (kind in bad) {
            if (bad[kind] > 20) print "merge: " kind ": ... and " bad[kind] - 20 " more" > "/dev/stderr"
            failed += bad[kind]
        }
        if (failed) {
            print "merge: FAILED: " n " inputs listed, " records " records in " nparts " parts; " failed " problem(s) above, nothing written" > "/dev/stderr"
            exit 1
        }
        for (i = 1; i <= n; i++) { k = order[i]; used[k]++; print rec[k, used[k]] > merged }
        close(merged)
        print "merge: ok: " n " inputs, each with exactly one record (" errors + 0 " error records), from " nparts " parts" > "/dev/stderr"
    }' "$work/list.keys" $(seq -f "$work/%g.keyed" 1 "$i")
rc=$?
set -e
((rc == 0)) || exit "$rc"
[[ -f $merged ]] || : >"$merged"
if [[ -n $out ]]; then
    tmp="$(dirname "$out")/.$(basename "$out").merge-tmp-$$"
    cp "$merged" "$tmp" && mv -f "$tmp" "$out"
else
    cat "$merged"
fi
