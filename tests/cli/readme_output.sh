# Sourced by CLI tests: the README's quick-start output and a tolerant comparison with a real run.
# readme_block README OUT   writes the fenced block after "What command 1 ends with" to OUT
# same_output WANT GOT      path lines exact; "  prob  label (index)" lines: label and index exact, prob within 5e-4
readme_block() {
  awk '/^What command 1 ends with/ {f = 1; next} f && /^```$/ {if (in_block) exit; in_block = 1; next} in_block' "$1" > "$2"
}
same_output() {
  awk 'NR == FNR {want[FNR] = $0; n = FNR; next}
       {got = $0; w = want[FNR]
        if (w ~ /^  [0-9]/) { split(w, a, "  "); split(got, b, "  ")
          if (a[3] != b[3] || (a[2] - b[2]) > 5e-4 || (b[2] - a[2]) > 5e-4) { print "line " FNR ": [" got "] vs README [" w "]"; bad = 1 } }
        else if (got != w) { print "line " FNR ": [" got "] vs README [" w "]"; bad = 1 } }
       END {if (FNR != n) { print FNR " lines, README has " n; bad = 1 } exit bad}' "$1" "$2"
}
