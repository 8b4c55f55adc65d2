#!/usr/bin/env bash
# CLI tests of `vit pull`, `--model ORG/NAME` and `vit list` against tests/hub_server.py (a stand-in Hub on
# 127.0.0.1): cache layout, resume, retries, checksums, atomicity, auth errors, offline use, Ctrl-C, concurrency.
# Usage: test_pull.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""; fi
}

# Repositories: the project's own small models, a second revision, a private and a gated copy, a sharded model,
# one with pickle weights only, and the Hub-layout fixtures when the tree has them.
TINY=$SRC/tests/fixtures/tiny_rgb_p16
FASHION=$SRC/models/fashion-vit
mkdir -p "$work/repos/tiny_v2" "$work/repos/ptonly" "$work/repos/sharded"
cp "$TINY"/{config.json,model.safetensors} "$work/repos/tiny_v2/"
sed 's/class_/v2_class_/' "$TINY/labels.txt" > "$work/repos/tiny_v2/labels.txt"
echo '{"model_type": "vit", "architectures": ["ViTForImageClassification"]}' > "$work/repos/ptonly/config.json"
head -c 1000 /dev/urandom > "$work/repos/ptonly/pytorch_model.bin"
echo '{"model_type": "vit"}' > "$work/repos/sharded/config.json"
head -c 3000 /dev/urandom > "$work/repos/sharded/model-00001-of-00002.safetensors"
head -c 2000 /dev/urandom > "$work/repos/sharded/model-00002-of-00002.safetensors"
head -c 500 /dev/urandom > "$work/repos/sharded/flax_model.msgpack"
echo '{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}' \
    > "$work/repos/sharded/model.safetensors.index.json"
repos=(--repo "test/tiny=$TINY" --repo "test/tiny@v2=$work/repos/tiny_v2" --repo "test/fashion=$FASHION"
       --repo "test/priv=$TINY" --private "test/priv=tok123" --repo "test/gated=$TINY" --gated "test/gated=tok456"
       --repo "test/ptonly=$work/repos/ptonly" --repo "test/sharded=$work/repos/sharded")
hub_fixtures=()
if [[ -d $SRC/tests/fixtures/hub ]]; then
    for d in "$SRC"/tests/fixtures/hub/*/; do
        [[ -f $d/config.json ]] || continue
        n=$(basename "$d")
        repos+=(--repo "fixtures/$n=$d")
        hub_fixtures+=("$n")
    done
fi

python3 "$SRC/tests/hub_server.py" "${repos[@]}" --port-file "$work/port" --pid-file "$work/pid" \
    --log "$work/log" --faults "$work/faults" 2>"$work/server.err" &
server_pid=$!
track_pid "$server_pid"   # lib.sh's EXIT trap kills it however the test ends
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
if [[ ! -s $work/port ]]; then echo "the test hub did not start:"; cat "$work/server.err"; exit 1; fi
check_eq "server pid file names the process we started" "$(cat "$work/pid")" "$server_pid"
export HF_ENDPOINT="http://127.0.0.1:$(cat "$work/port")"
export HF_HUB_CACHE="$work/cache"
unset HF_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HUGGING_FACE_HUB_TOKEN HF_HOME
export HF_TOKEN_PATH="$work/no-token"
faults() { printf '%s\n' "$1" > "$work/faults"; }
no_faults() { echo '[]' > "$work/faults"; }
log_mark() { wc -l < "$work/log" 2>/dev/null || echo 0; }
log_since() { tail -n +"$(( $1 + 1 ))" "$work/log"; }
# pull_fresh FAULTS: `vit pull test/fashion` into an empty cache with FAULTS on; sets rc, stderr in $work/e, and m
# (the server log's mark before the pull).
pull_fresh() {
    rm -rf "$RF"
    faults "$1"
    m=$(log_mark)
    "$VIT" pull test/fashion >/dev/null 2>"$work/e"; rc=$?
}
# pull_refused WHAT PATTERN REPO [VAR=VALUE...]: `vit pull REPO` with those variables set exits 1 with PATTERN on
# stderr.
pull_refused() {
    local what=$1 pattern=$2 repo=$3
    shift 3
    env "$@" "$VIT" pull "$repo" >/dev/null 2>"$work/e"
    check_eq "$what -> exit 1" "$?" 1
    check "$what: message" grep -q "$pattern" "$work/e"
}
blob_verified() { check_eq "blob verified" "$(sha256 "$RF/blobs/$FASHION_SHA")" "$FASHION_SHA"; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
git_sha1() { python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$1"; }
R=$HF_HUB_CACHE/models--test--tiny
RF=$HF_HUB_CACHE/models--test--fashion
FASHION_SHA=$(sha256 "$FASHION/model.safetensors")
no_faults

echo "== pull: the huggingface_hub cache layout"
m=$(log_mark)
out=$("$VIT" pull test/tiny 2>"$work/e"); rc=$?
check_eq "pull -> exit 0" "$rc" 0
commit=$(cat "$R/refs/main" 2>/dev/null)
check "refs/main holds a 40-hex commit" bash -c "[[ '$commit' =~ ^[0-9a-f]{40}$ ]]"
check_eq "stdout is the snapshot folder" "$out" "$R/snapshots/$commit"
check_eq "snapshot files: config, weights, the labels file config.json names (not reference.safetensors)" \
    "$(ls "$R/snapshots/$commit" | tr '\n' ' ')" "config.json labels.txt model.safetensors "
check_eq "weights link -> ../../blobs/<sha256> (LFS etag)" "$(readlink "$R/snapshots/$commit/model.safetensors")" \
    "../../blobs/$(sha256 "$TINY/model.safetensors")"
check_eq "config link -> ../../blobs/<git blob sha1>" "$(readlink "$R/snapshots/$commit/config.json")" \
    "../../blobs/$(git_sha1 "$TINY/config.json")"
check "blobs hold the same bytes" bash -c "cmp -s '$R/snapshots/$commit/model.safetensors' '$TINY/model.safetensors' && cmp -s '$R/snapshots/$commit/labels.txt' '$TINY/labels.txt'"
check_eq "three blobs, no .incomplete" "$(ls "$R/blobs" | wc -l)" 3
check "API then HEAD+GET per file, the weights through the LFS redirect" bash -c \
    "log_since() { tail -n +\$((\$1 + 1)) '$work/log'; }; log_since $m | jq -r '.method + \" \" + .path' | grep -q '^GET /lfs/$(sha256 "$TINY/model.safetensors")'"
check "a summary on stderr" grep -q "test/tiny at main" "$work/e"
m=$(log_mark)
out2=$("$VIT" pull test/tiny 2>/dev/null)
check_eq "second pull: same folder" "$out2" "$out"
check_eq "second pull: only the revision is asked, no file is fetched again" "$(log_since "$m" | jq -r .path | grep -vc '^/api/')" 0

echo "== revisions"
out=$("$VIT" pull test/tiny --revision v2 2>/dev/null); rc=$?
check_eq "--revision v2 -> exit 0" "$rc" 0
c2=$(cat "$R/refs/v2" 2>/dev/null)
check "refs/v2 is another commit" bash -c "[[ -n '$c2' && '$c2' != '$commit' ]]"
check_eq "v2 snapshot" "$out" "$R/snapshots/$c2"
check_eq "the unchanged weights share one blob" "$(readlink "$R/snapshots/$c2/model.safetensors")" "$(readlink "$R/snapshots/$commit/model.safetensors")"
check_eq "ORG/NAME@REV is the same" "$("$VIT" pull test/tiny@v2 2>/dev/null)" "$out"
"$VIT" pull test/tiny --revision nope >/dev/null 2>"$work/e"; rc=$?
check_eq "unknown revision -> exit 1" "$rc" 1
check "message names the revision and repo" grep -q "revision nope not found in test/tiny" "$work/e"

echo "== models by name: --model ORG/NAME, built-in names"
m=$(log_mark)
a=$("$VIT" classify --model test/fashion --format jsonl "$SRC"/samples/fashion/*.png 2>"$work/e"); rc=$?
check_eq "classify --model test/fashion (first use downloads) -> exit 0" "$rc" 0
check "stderr says it downloads" grep -q "downloading test/fashion" "$work/e"
check "it downloaded" bash -c "[[ -f '$RF/blobs/$FASHION_SHA' ]]"
b=$("$VIT" classify --model "$FASHION" --format jsonl "$SRC"/samples/fashion/*.png 2>/dev/null)
check_eq "same predictions as the local directory" "$(printf '%s\n' "$a" | jq -c .top_k | md5sum)" "$(printf '%s\n' "$b" | jq -c .top_k | md5sum)"
check "predictions are there" bash -c "[[ \$(printf '%s\n' '$a' | jq -c .top_k | wc -l) -ge 2 ]]"
m=$(log_mark)
"$VIT" classify --model test/fashion --format jsonl "$SRC"/samples/fashion/*.png >/dev/null 2>&1
check_eq "second use: from the cache, no request" "$(log_since "$m" | wc -l)" 0
c=$("$VIT" classify --model fashion-vit --format jsonl "$SRC"/samples/fashion/*.png 2>/dev/null)
check_eq "--model fashion-vit (built-in name) = the directory" "$(printf '%s\n' "$c" | jq -c .top_k | md5sum)" "$(printf '%s\n' "$b" | jq -c .top_k | md5sum)"
"$VIT" info --model nope-not-a-model >/dev/null 2>"$work/e"; rc=$?
check_eq "unknown name -> exit 1" "$rc" 1
check "message lists the built-in models" grep -q "built-in model name (.*fashion-vit" "$work/e"

echo "== offline (HF_HUB_OFFLINE=1)"
m=$(log_mark)
out=$(HF_HUB_OFFLINE=1 "$VIT" pull test/tiny 2>/dev/null); rc=$?
check_eq "cached pull offline -> exit 0" "$rc" 0
check_eq "offline pull -> the main snapshot" "$out" "$R/snapshots/$commit"
HF_HUB_OFFLINE=1 "$VIT" classify --model test/tiny "$SRC/samples/fashion/ankle_boot.png" >/dev/null 2>&1; rc=$?
check_eq "classify --model test/tiny offline -> exit 0" "$rc" 0
HF_HUB_OFFLINE=1 "$VIT" pull test/sharded >/dev/null 2>"$work/e"; rc=$?
check_eq "offline and not cached -> exit 1" "$rc" 1
check "message says to vit pull it first" grep -q 'not in the Hub cache .* HF_HUB_OFFLINE is set: run `vit pull test/sharded`' "$work/e"
HF_HUB_OFFLINE=1 "$VIT" classify --model test/sharded "$SRC/samples/fashion/ankle_boot.png" >/dev/null 2>"$work/e"; rc=$?
check_eq "classify offline, not cached -> exit 1" "$rc" 1
check "same message" grep -q 'vit pull test/sharded' "$work/e"
check_eq "offline: no request reached the server" "$(log_since "$m" | wc -l)" 0

echo "== what a model needs"
out=$("$VIT" pull test/sharded 2>"$work/e"); rc=$?
check_eq "sharded pull -> exit 0" "$rc" 0
check_eq "index and every shard it names, no other weights" "$(ls "$out" | tr '\n' ' ')" \
    "config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json "
"$VIT" pull test/ptonly >/dev/null 2>"$work/e"; rc=$?
check_eq "pytorch_model.bin only -> exit 1" "$rc" 1
check "says safetensors only, points at the exporter" grep -q "pytorch_model.bin: vit reads safetensors weights only.*scripts/export_weights.py" "$work/e"

echo "== errors name the problem"
"$VIT" pull test/nope >/dev/null 2>"$work/e"; rc=$?
check_eq "404 repo -> exit 1" "$rc" 1
check "names the repo, endpoint and URL" grep -q "repository test/nope not found on $HF_ENDPOINT (HTTP 404 from $HF_ENDPOINT/api/models/test/nope/revision/main" "$work/e"
"$VIT" pull not-a-repo-id >/dev/null 2>"$work/e"; rc=$?
check_eq "bad id -> exit 1" "$rc" 1
check "says ORG/NAME" grep -q "not a Hub model id (expected ORG/NAME" "$work/e"
HF_ENDPOINT=http://127.0.0.1:1 "$VIT" pull test/x >/dev/null 2>"$work/e"; rc=$?
check_eq "no server -> exit 1" "$rc" 1
check "curl's reason and the URL" grep -q "cannot reach http://127.0.0.1:1/api/models/test/x/revision/main: .*connect" "$work/e"
pull_fresh '[{"match": "/resolve/", "method": "HEAD", "status": 404, "error_code": "EntryNotFound"}]'
no_faults
check_eq "404 file -> exit 1" "$rc" 1
check "names the file, repo and revision" grep -q "config.json not found in test/fashion at revision main (HTTP 404" "$work/e"

echo "== private and gated repositories: HF_TOKEN"
m=$(log_mark)
pull_refused "private, no token" "private or gated.*set HF_TOKEN.*(HTTP 401" test/priv
pull_refused "wrong token, says it was sent" "the token in HF_TOKEN was sent" test/priv HF_TOKEN=wrong
m=$(log_mark)
HF_TOKEN=tok123 "$VIT" pull test/priv >/dev/null 2>"$work/e"; rc=$?
check_eq "right token -> exit 0" "$rc" 0
check_eq "token sent as a Bearer header on every Hub request" \
    "$(log_since "$m" | jq -r 'select(.path | startswith("/api/") or contains("/resolve/")) | .authorization' | sort -u)" "Bearer tok123"
echo "tok123" > "$work/token"
HF_TOKEN_PATH="$work/token" "$VIT" pull test/priv >/dev/null 2>&1; rc=$?
check_eq "token file (huggingface-cli login) -> exit 0" "$rc" 0
pull_refused "gated, no token: accept the conditions, set HF_TOKEN" \
    "test/gated is gated: accept its conditions at $HF_ENDPOINT/test/gated, then set HF_TOKEN" test/gated
pull_refused "gated, token without access: 403 named" "HTTP 403" test/gated HF_TOKEN=other
pull_fresh '[{"match": "/lfs/", "status": 403}]'
no_faults
check_eq "403 on the weights -> exit 1" "$rc" 1
check "403 message names the URL and HF_TOKEN" grep -q "access denied.*set HF_TOKEN.*(HTTP 403 from $HF_ENDPOINT/lfs/$FASHION_SHA" "$work/e"

echo "== retries on 5xx"
pull_fresh '[{"match": "/lfs/", "status": 500, "times": 2}, {"match": "/api/", "status": 503, "times": 1}]'
check_eq "two 500s and a 503, then success -> exit 0" "$rc" 0
check_eq "statuses seen for the weights" "$(log_since "$m" | jq -r 'select(.path|startswith("/lfs/")) | .status' | tr '\n' ' ')" "500 500 200 "
check "retries reported on stderr" grep -q "retrying .*HTTP 500" "$work/e"
blob_verified
faults '[{"match": "/api/", "status": 500}]'
"$VIT" pull test/fashion >/dev/null 2>"$work/e"; rc=$?
no_faults
check_eq "a 500 that stays -> exit 1 after the retries" "$rc" 1
check_eq "5 attempts: 4 retries reported, once each" "$(grep -c "retrying test/fashion: HTTP 500" "$work/e")" 4
check "names the status and URL" grep -q "HTTP 500 after retries (HTTP 500 from $HF_ENDPOINT/api/models/test/fashion" "$work/e"

echo "== resume after a dropped connection"
pull_fresh '[{"match": "/lfs/", "cut_after": 700000, "times": 1}]'
check_eq "connection cut mid-file -> resumed, exit 0" "$rc" 0
check_eq "second request asks for the rest with Range" "$(log_since "$m" | jq -r 'select(.path|startswith("/lfs/")) | "\(.range) \(.status) \(.sent)"' | tr '\n' ' ')" \
    "null 200 700000 bytes=700000- 206 $(( $(stat -c %s "$FASHION/model.safetensors") - 700000 )) "
blob_verified
pull_fresh '[{"match": "/lfs/", "truncate_to": 400000, "times": 1}]'
check_eq "a body shorter than X-Linked-Size (lying Content-Length) -> resumed, exit 0" "$rc" 0
check "resumed at 400000" bash -c "tail -n +$((m + 1)) '$work/log' | jq -r .range | grep -qx 'bytes=400000-'"
blob_verified
# A pull that fails after a cut keeps the .incomplete; the next one grows it from where it stopped.
pull_fresh '[{"match": "/lfs/", "cut_after": 300000, "times": 1}, {"match": "/lfs/", "status": 404, "times": 1}]'
no_faults
check_eq "cut, then an error -> exit 1" "$rc" 1
check_eq ".incomplete kept with the bytes received" "$(stat -c %s "$RF/blobs/$FASHION_SHA.incomplete" 2>/dev/null)" 300000
check "no blob, no snapshot link for the weights" bash -c "[[ ! -e '$RF/blobs/$FASHION_SHA' && -z \$(find '$RF/snapshots' -name model.safetensors) ]]"
m=$(log_mark)
"$VIT" pull test/fashion >/dev/null 2>&1; rc=$?
check_eq "next pull -> exit 0" "$rc" 0
check_eq "it resumed at byte 300000" "$(log_since "$m" | jq -r 'select(.path|startswith("/lfs/")) | .range' | tr '\n' ' ')" "bytes=300000- "
check "the .incomplete became the verified blob" bash -c "[[ ! -e '$RF/blobs/$FASHION_SHA.incomplete' ]] && [[ \$(sha256sum '$RF/blobs/$FASHION_SHA' | cut -d' ' -f1) == $FASHION_SHA ]]"

echo "== checksum mismatch"
pull_fresh '[{"match": "/lfs/", "corrupt": true}]'
check_eq "corrupted weights -> exit 1" "$rc" 1
check "message: checksum mismatch, file, repo, URL" grep -q "checksum mismatch for model.safetensors of test/fashion from $HF_ENDPOINT/lfs/$FASHION_SHA: got sha256 [0-9a-f]*, the Hub announced $FASHION_SHA" "$work/e"
check_eq "nothing of the weights left in blobs/" "$(ls "$RF/blobs" | grep -c "$FASHION_SHA")" 0
check_eq "no link to them" "$(find "$RF/snapshots" -name model.safetensors | wc -l)" 0
pull_fresh '[{"match": "config.json", "method": "GET", "corrupt": true}]'
check_eq "corrupted config.json (git file) -> exit 1" "$rc" 1
check "git sha1 checked" grep -q "checksum mismatch for config.json of test/fashion.*got git sha1" "$work/e"
no_faults
"$VIT" pull test/fashion >/dev/null 2>&1; rc=$?
check_eq "pull again without the fault -> exit 0" "$rc" 0

echo "== write errors keep the partial file"
rm -rf "$RF"
(trap '' XFSZ; ulimit -f 200; exec "$VIT" pull test/fashion) >/dev/null 2>"$work/e"; rc=$?
check_eq "file size limit hit while writing -> exit 1" "$rc" 1
check "message names the .incomplete and the system error" grep -q "cannot write $RF/blobs/$FASHION_SHA.incomplete: File too large" "$work/e"
check "no blob" bash -c "[[ ! -e '$RF/blobs/$FASHION_SHA' ]]"
"$VIT" pull test/fashion >/dev/null 2>&1; rc=$?
check_eq "next pull completes it -> exit 0" "$rc" 0
blob_verified

wait_for_partial() {   # waits (up to 30 s) until the .incomplete holds more than $1 bytes
    local n
    for _ in $(seq 600); do
        n=$(stat -c %s "$RF/blobs/$FASHION_SHA.incomplete" 2>/dev/null || echo 0)
        (( n > $1 )) && return 0
        sleep 0.05
    done
    return 1
}

echo "== killed pull: nothing half-written"
rm -rf "$RF"
faults '[{"match": "/lfs/", "rate": 200000}]'
"$VIT" pull test/fashion >/dev/null 2>&1 &
p=$!; track_pid "$p"
wait_for_partial 0
kill -9 "$p"; wait "$p" 2>/dev/null
killed_size=$(stat -c %s "$RF/blobs/$FASHION_SHA.incomplete")
check "killed mid-download: only the .incomplete in blobs/" bash -c "[[ -s '$RF/blobs/$FASHION_SHA.incomplete' && ! -e '$RF/blobs/$FASHION_SHA' ]]"
check_eq "no snapshot link to missing weights" "$(find "$RF/snapshots" -name model.safetensors | wc -l)" 0
HF_HUB_OFFLINE=1 "$VIT" classify --model test/fashion "$SRC/samples/fashion/ankle_boot.png" >/dev/null 2>"$work/e"; rc=$?
check_eq "the half-pulled model is not used offline -> exit 1" "$rc" 1

echo "== Ctrl-C during a slow download"
"$VIT" pull test/fashion >/dev/null 2>"$work/e" &
p=$!; track_pid "$p"
wait_for_partial "$killed_size"   # it resumed the killed run's file and is downloading
kill -INT "$p"; wait "$p"; rc=$?
check_eq "SIGINT -> exit 1" "$rc" 1
check "message: interrupted, kept, vit pull resumes" grep -q 'interrupted: .*kept in .*\.incomplete; `vit pull test/fashion` resumes it' "$work/e"
size=$(stat -c %s "$RF/blobs/$FASHION_SHA.incomplete" 2>/dev/null || echo 0)
check "the .incomplete grew past the killed run's $killed_size bytes (to $size)" bash -c "(( $size > $killed_size ))"
no_faults
m=$(log_mark)
"$VIT" pull test/fashion >/dev/null 2>&1; rc=$?
check_eq "a later pull completes it -> exit 0" "$rc" 0
# (the server logs a request when it ends, so the interrupted one may show up after this mark)
check "resumed from the interrupted size" bash -c "tail -n +$((m + 1)) '$work/log' | jq -r 'select(.path|startswith(\"/lfs/\")) | \"\\(.range) \\(.status)\"' | grep -qx 'bytes=$size- 206'"
blob_verified

echo "== two concurrent pulls of one repo"
rm -rf "$RF"
faults '[{"match": "/lfs/", "rate": 500000}]'
m=$(log_mark)
"$VIT" pull test/fashion >"$work/o1" 2>"$work/e1" &
p1=$!
wait_for_partial 0   # the first holds the blob's lock now, for ~4 s
"$VIT" pull test/fashion >"$work/o2" 2>"$work/e2" &
p2=$!
track_pid "$p1"; track_pid "$p2"
wait "$p1"; rc1=$?
wait "$p2"; rc2=$?
no_faults
check_eq "both succeed" "$rc1 $rc2" "0 0"
check "same snapshot printed" cmp -s "$work/o1" "$work/o2"
check_eq "the weights were fetched once (the other waited on the lock)" "$(log_since "$m" | jq -r 'select(.path|startswith("/lfs/")) | .path' | wc -l)" 1
check_eq "one blob per file, no .incomplete" "$(ls "$RF/blobs" | tr '\n' ' ' | grep -c incomplete)" 0
blob_verified
check "the second pull waited for the first and said so" grep -q "waiting for another process that is downloading model.safetensors of test/fashion" "$work/e2"

echo "== vit list"
out=$("$VIT" list --format json 2>/dev/null); rc=$?
check_eq "list -> exit 0" "$rc" 0
check_eq "built-in fashion-vit listed" "$(printf '%s\n' "$out" | jq -r '.[] | select(.source=="built-in" and .name=="fashion-vit") | .family')" "vit (project config)"
check_eq "test/tiny main snapshot listed with its revision" \
    "$(printf '%s\n' "$out" | jq -r --arg c "$commit" '.[] | select(.name=="test/tiny" and .commit==$c) | .revisions | join(",")')" "main"
tiny_size=$(( $(stat -c %s "$TINY/config.json") + $(stat -c %s "$TINY/model.safetensors") + $(stat -c %s "$TINY/labels.txt") ))
check_eq "size on disk = its files" "$(printf '%s\n' "$out" | jq -r --arg c "$commit" '.[] | select(.commit==$c) | .size_bytes')" "$tiny_size"
check_eq "transformers family from model_type" "$(printf '%s\n' "$out" | jq -r '.[] | select(.name=="test/sharded") | .family')" "vit (transformers)"
check "text table has a header and the rows" bash -c "'$VIT' list | head -1 | grep -q '^NAME *SOURCE *FAMILY *SIZE' && '$VIT' list | grep -q '^test/tiny '"

if ((${#hub_fixtures[@]})); then
    echo "== Hub-layout fixtures (tests/fixtures/hub)"
    for n in "${hub_fixtures[@]}"; do
        out=$("$VIT" pull "fixtures/$n" 2>"$work/e"); rc=$?
        if [[ -f $SRC/tests/fixtures/hub/$n/pytorch_model.bin && ! -f $SRC/tests/fixtures/hub/$n/model.safetensors && ! -f $SRC/tests/fixtures/hub/$n/model.safetensors.index.json ]]; then
            check_eq "fixtures/$n (pickle weights only) -> exit 1" "$rc" 1
            continue
        fi
        check_eq "pull fixtures/$n -> exit 0" "$rc" 0
        check "fixtures/$n: every file the model needs is the committed one" bash -c \
            "for f in \$(cd '$out' && find . -type l); do cmp -s '$out/'\$f '$SRC/tests/fixtures/hub/$n/'\$f || exit 1; done"
        [[ $n == bad_* ]] && continue
        a=$("$VIT" classify --model "fixtures/$n" --format jsonl --logits "$SRC/tests/fixtures/hub/photo.png" 2>/dev/null)
        b=$("$VIT" classify --model "$SRC/tests/fixtures/hub/$n" --format jsonl --logits "$SRC/tests/fixtures/hub/photo.png" 2>/dev/null)
        la=$(printf '%s\n' "$a" | jq -c .logits 2>/dev/null)
        lb=$(printf '%s\n' "$b" | jq -c .logits 2>/dev/null)
        if [[ -n $lb && $lb != null ]]; then
            check_eq "classify --model fixtures/$n: logits = those of the committed directory" "$la" "$lb"
        else
            bad "classify --model $SRC/tests/fixtures/hub/$n gave no logits"
        fi
    done
fi

stop_server
check "server stopped" bash -c "! kill -0 $(cat "$work/pid") 2>/dev/null"
finish
