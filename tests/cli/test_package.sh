#!/usr/bin/env bash
# Packaging tests: build the .deb and .tar.gz with CPack, unpack them, and run the unpacked vit from elsewhere
# with no environment hints; Depends without -dev packages; the man page renders and documents every option;
# bash completion offers subcommands, options, choices, model names and files; --version says what a bug report
# needs; zsh completes in a pseudo-terminal. Usage: test_package.sh BUILD_DIR SOURCE_DIR
# (needs cpack, dpkg-deb, dpkg-shlibdeps, file, man, zsh: scripts/setup.sh installs them)
set -u
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/cli/lib.sh"
. "$SRC/tests/cli/readme_output.sh"
# Nothing from the caller: no VIT_DEFAULT_MODEL, no HF_* variables, a fresh HOME, a plain PATH.
clean() { env -i PATH=/usr/bin:/bin HOME="$work/home" LC_ALL=C "$@"; }
mkdir -p "$work/home" "$work/elsewhere"

echo "== cpack builds the .deb and the .tar.gz"
(cd "$BUILD" && cpack -G "DEB;TGZ" -B "$work/pkg") > "$work/cpack.log" 2>&1; rc=$?
check_eq "cpack exits 0" "$rc" 0
((rc)) && tail -20 "$work/cpack.log"
deb=$(ls "$work"/pkg/vit_*.deb 2>/dev/null | head -1)
tgz=$(ls "$work"/pkg/vit-*.tar.gz 2>/dev/null | head -1)
check "a .deb" test -f "$deb"
check "a .tar.gz" test -f "$tgz"
[[ -f $deb && -f $tgz ]] || { finish; exit 1; }
echo "  $(basename "$deb"): $(stat -c %s "$deb") bytes; $(basename "$tgz"): $(stat -c %s "$tgz") bytes"

echo "== Depends: computed runtime libraries, no -dev package"
depends=$(dpkg-deb -f "$deb" Depends)
echo "  Depends: $depends"
check "dpkg-deb -I lists no -dev dependency" bash -c "! dpkg-deb -I '$deb' | grep -E '^ *(Pre-)?Depends:' | grep -q -- '-dev'"
for lib in libdnnl libopencv-core libopencv-imgcodecs libc6 libstdc++6; do
  check "depends on $lib" grep -q "$lib" <<<"$depends"
done

echo "== the unpacked .deb runs from another directory with no environment hints"
root=$work/root
dpkg-deb -x "$deb" "$root"
for f in usr/bin/vit usr/share/vit/models/deit-tiny-imagenet/config.json usr/share/vit/models/fashion-vit/config.json \
         usr/share/vit/configs/deit_tiny_patch16_224.json usr/share/man/man1/vit.1.gz \
         usr/share/bash-completion/completions/vit usr/share/zsh/site-functions/_vit usr/share/doc/vit/README.md; do
  check "installs $f" test -e "$root/$f"
done
cp -r "$SRC/samples" "$work/elsewhere/samples"
(cd "$work/elsewhere" && clean "$root/usr/bin/vit" classify samples/) > "$work/run.txt" 2>"$work/run.err"; rc=$?
check_eq "usr/bin/vit classify samples/ exits 0" "$rc" 0
check_eq "nothing on stderr" "$(cat "$work/run.err")" ""
readme_block "$SRC/README.md" "$work/readme.txt"
check "prints the README's quick-start output" same_output "$work/readme.txt" "$work/run.txt"
check_eq "default model found next to the binary" \
  "$(cd "$work/elsewhere" && clean "$root/usr/bin/vit" info --format json 2>/dev/null | jq -r .config)" \
  "$root/usr/share/vit/models/deit-tiny-imagenet/config.json"
check_eq "the Fashion-MNIST model ships too" "$(cd "$work/elsewhere" && clean "$root/usr/bin/vit" classify --format jsonl \
  -k 1 --model "$root/usr/share/vit/models/fashion-vit" samples/fashion/bag.png 2>/dev/null | jq -r '.top_k[0].label')" "Bag"

echo "== the tarball is relocatable"
mkdir -p "$work/tar"
tar -xzf "$tgz" -C "$work/tar"
mv "$work/tar"/vit-* "$work/tar/moved"
check_eq "moved tree finds its model" "$(cd "$work/elsewhere" && clean "$work/tar/moved/bin/vit" info --format json 2>/dev/null | jq -r .config)" \
  "$work/tar/moved/share/vit/models/deit-tiny-imagenet/config.json"
check_eq "and classifies" "$(cd "$work/elsewhere" && clean "$work/tar/moved/bin/vit" classify --format jsonl -k 1 samples/coffee.png \
  2>/dev/null | jq -r '.top_k[0].label')" "espresso"

echo "== vit --version"
clean "$root/usr/bin/vit" --version > "$work/version" 2>&1; rc=$?
check_eq "exit 0" "$rc" 0
sed 's/^/  /' "$work/version"
check "version and git commit" grep -Eq '^vit [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)$' "$work/version"
check "oneDNN version and CPU ISA" grep -Eq '^oneDNN [0-9]+\.[0-9]+\.[0-9]+.*, CPU ISA [A-Za-z]' "$work/version"
check "OpenCV version" grep -Eq '^OpenCV [0-9]+\.[0-9]+' "$work/version"

echo "== man page"
man1=$root/usr/share/man/man1/vit.1.gz
MANWIDTH=100 clean man -l "$man1" > "$work/man.txt" 2>"$work/man.err"; rc=$?
check_eq "man -l renders it" "$rc" 0
check "NAME and SYNOPSIS" bash -c "grep -q '^NAME' '$work/man.txt' && grep -q '^SYNOPSIS' '$work/man.txt'"
check_eq "no groff warnings" "$(MANWIDTH=100 clean man --warnings -l "$man1" 2>&1 >/dev/null)" ""
# One source of truth: every subcommand and every option its --help shows is in the page.
subs=$(clean "$root/usr/bin/vit" --help | awk '/^Subcommands:/ {f = 1; next} f && NF {print $1}')
check "vit --help lists subcommands" test -n "$subs"
for s in $subs; do
  check "man page has a section for $s" grep -Eq "^   $s\$" "$work/man.txt"
  missing=$(clean "$root/usr/bin/vit" "$s" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | while read -r o; do
    grep -q -- "$o" "$work/man.txt" || echo "$o"; done)
  check_eq "every option of vit $s --help is in the man page" "$missing" ""
done

echo "== bash completion"
comp() {   # comp WORD... : what _vit offers for the last word (PATH finds the unpacked vit for model names)
  (cd "$work/elsewhere" && env -i PATH="$root/usr/bin:/usr/bin:/bin" HOME="$work/home" HF_HUB_CACHE="$work/hf" bash -c \
    'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _vit; ((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
    _ "$root/usr/share/bash-completion/completions/vit" "$@")
}
mkdir -p "$work/hf/models--google--vit-base-patch16-224/snapshots" "$work/hf/datasets--x--y/snapshots"
check_eq "vit cl -> classify" "$(comp vit cl)" "classify "
check_eq "every subcommand of vit --help" "$(comp vit '')" "$(printf '%s\n' $subs | sort | tr '\n' ' ')"
check_eq "options: vit classify --fo" "$(comp vit classify --fo)" "--format "
check_eq "choices: --format j" "$(comp vit classify --format j)" "json jsonl "
check_eq "choices: --format=c" "$(comp vit classify --format = c)" "csv "
check_eq "--model: built-in and cached names, directories" "$(comp vit classify --model '')" \
  "deit-tiny-imagenet fashion-vit google/vit-base-patch16-224 samples "
check_eq "files" "$(comp vit classify samples/c)" "samples/chelsea.png samples/coffee.png "
check_eq "no file names for a number" "$(comp vit classify --top-k '')" ""

echo "== zsh completion (an interactive zsh in a pseudo-terminal, TAB typed)"
check "_vit parses (zsh -n)" zsh -n "$root/usr/share/zsh/site-functions/_vit"
zcomp() {   # zcomp WORDS EXPECTED: "vit WORDS<TAB>" turns into a line showing EXPECTED within 30 s
  (cd "$work/elsewhere" && env -i PATH=/usr/bin:/bin HOME="$work/home" HF_HUB_CACHE="$work/hf" timeout 30 \
    zsh -f "$SRC/tests/cli/zsh_complete.zsh" "$root/usr/share/zsh/site-functions" "$root/usr/bin" "$1" "$2" >/dev/null)
}
check "vit cl<TAB> -> vit classify" zcomp "cl" "vit classify "
check "vit classify --form<TAB> -> --format" zcomp "classify --form" "--format "
check "vit classify --format js<TAB> -> json" zcomp "classify --format js" "--format json"
check "vit classify --model fa<TAB> -> fashion-vit" zcomp "classify --model fa" "--model fashion-vit "
check "vit classify --model goo<TAB> -> cached Hub id" zcomp "classify --model goo" "--model google/vit-base-patch16-224 "
check "vit classify samples/ch<TAB> -> samples/chelsea.png" zcomp "classify samples/ch" "samples/chelsea.png "
finish
