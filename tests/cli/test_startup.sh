#!/usr/bin/env bash
# CLI tests of vit's start-up path: OpenCV's image decoders (libvit_codecs.so -> libopencv_imgcodecs and its
# ~140 libraries) are loaded only by the commands that decode images, bound within their own tree first
# (RTLD_DEEPBIND) except under an interposer, the OpenMP spin count is set before
# libgomp reads it (no re-exec), and bf16 is refused clearly on the AVX2 code path.
# Usage: test_startup.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
loaded() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -c "file=libopencv_imgcodecs"; }

echo "== imgcodecs only where images are decoded"
check_eq "vit --help does not load libopencv_imgcodecs" "$(loaded "$VIT" --help)" 0
check_eq "vit info does not load it" "$(loaded "$VIT" info)" 0
check_eq "vit bench does not load it" "$(loaded "$VIT" bench -n 1 --warmup 0 -m "$SRC/tests/fixtures/tiny_rgb_p16")" 0
check "vit classify loads it" test "$(loaded "$VIT" classify "$SRC/samples/coffee.png")" -ge 1
top=$("$VIT" classify --format jsonl -k 1 "$SRC/samples/coffee.png" 2>"$work/err" | jq -r '.top_k[0].label')
check_eq "a PNG decoded through the module is classified" "$top" "espresso"
check_eq "nothing on stderr" "$(cat "$work/err")" ""

echo "== the codecs' libraries bind within their own tree first (RTLD_DEEPBIND, lib/image_codecs.cpp)"
# LD_DEBUG=scopes lists the lookup scopes of each dlopen'ed object: with RTLD_DEEPBIND its own tree comes first,
# otherwise the executable's (global) scope does.
first_scope() {
  env "$@" LD_DEBUG=scopes "$VIT" classify "$SRC/samples/coffee.png" 2>&1 >/dev/null |
    grep -A1 "object=.*libvit_codecs.so" | sed -n 's/.*scope 0: \([^ ]*\).*/\1/p' | head -1 | xargs -r basename
}
if [[ $(uname -m) == x86_64 ]]; then
  check_eq "vit has no copy relocations (built -fPIC)" "$(readelf -rW "$VIT" | grep -c R_X86_64_COPY)" 0
fi
if ldd "$VIT" | grep -q libasan; then
  check_eq "a sanitized vit opens them without RTLD_DEEPBIND" "$(first_scope)" "$(basename "$VIT")"
else
  check_eq "libvit_codecs.so's own tree is searched first" "$(first_scope)" libvit_codecs.so
fi
check_eq "with LD_PRELOAD (an interposer), the global scope first" "$(first_scope LD_PRELOAD=libc.so.6)" \
  "$(basename "$VIT")"

echo "== OpenMP spin count without a re-exec"
spin() { env "$@" OMP_DISPLAY_ENV=verbose "$VIT" --help 2>&1 >/dev/null | sed -n "s/^ *GOMP_SPINCOUNT = '\(.*\)'/\1/p"; }
check_eq "GOMP_SPINCOUNT is 10000 when unset" "$(spin)" 10000
check_eq "a user's GOMP_SPINCOUNT is kept" "$(spin GOMP_SPINCOUNT=123)" 123
check "a user's OMP_WAIT_POLICY is left to libgomp" test "$(spin OMP_WAIT_POLICY=active)" != 10000
check_eq "one process: no re-exec" "$(LD_DEBUG=files "$VIT" --help 2>&1 >/dev/null | grep -c 'initialize program')" 1

echo "== bf16 on the AVX2 code path"
out=$(ONEDNN_MAX_CPU_ISA=AVX2 "$VIT" bench -p bf16 -n 1 --warmup 0 -m "$SRC/tests/fixtures/tiny_rgb_p16" 2>&1); rc=$?
check_eq "refused with exit 1" "$rc" 1
check_eq "one error line naming bf16 and AVX-512" "$out" \
  "vit: error: precision bf16 is not supported by oneDNN on this CPU (AVX2; bf16 needs AVX-512)"
finish
