#!/usr/bin/env bash
# The Dockerfile's build stage, also run by CI (the container itself is not built there): installs a built vit with
# its built-in models into PREFIX, writes PREFIX/share/vit/runtime-packages.txt (the Debian packages holding the
# shared libraries vit and its modules link directly; the runtime stage installs those and nothing else) and checks that the
# installed vit runs from PREFIX with no source tree: `vit info` of the built-in model and a classification.
# Usage: scripts/docker/build-stage.sh PREFIX [BUILD_DIR]   (BUILD_DIR default build/, as left by scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=${1:?usage: build-stage.sh PREFIX [BUILD_DIR]}
build=${2:-build}
[[ -x $build/vit ]] || { echo "build-stage: $build/vit missing: run scripts/setup.sh first" >&2; exit 1; }
cmake --install "$build" --prefix "$prefix" >&2
install -m 755 scripts/slurm/vit-array.sbatch "$prefix/bin/vit-array.sbatch"

vit=$prefix/bin/vit
packages=$prefix/share/vit/runtime-packages.txt
: >"$packages.tmp"
# vit and the modules it opens at run time (the image codecs, the OpenMP settings: lib/vit/*.so) each name the
# shared libraries they need; the packages holding those bring the rest as their dependencies.
mapfile -t modules < <(find "$prefix" -path '*/vit/*.so' -type f)
((${#modules[@]})) || { echo "build-stage: no lib/vit/*.so modules installed under $prefix" >&2; exit 1; }
for elf in "$vit" "${modules[@]}"; do
    for lib in $(readelf -d "$elf" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        # the dynamic loader itself (NEEDED where an -fPIC executable reaches thread-local storage through
        # __tls_get_addr) is listed by ldd as its path, without "=>": libc6 holds it, like libc.so.6
        path=$(ldd "$elf" | awk -v l="$lib" '$1 == l { print $3 } $2 !~ /=>/ && $1 ~ ("/" l "$") { print $1 }')
        [[ -n $path ]] || { echo "build-stage: $lib (needed by $elf): not found by ldd" >&2; exit 1; }
        [[ $path == "$prefix"/* ]] && continue   # one of vit's own modules
        pkg=""
        # Debian 12 merges /lib into /usr/lib: dpkg knows a library under one of the two names.
        for p in "$path" "$(realpath "$path")" "/usr$path" "${path#/usr}"; do
            pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [[ -n $pkg ]] && break
        done
        [[ -n $pkg ]] || { echo "build-stage: $lib ($path): no Debian package holds it" >&2; exit 1; }
        echo "$pkg" >>"$packages.tmp"
    done
done
sort -u "$packages.tmp" >"$packages"
rm -f "$packages.tmp"
echo "build-stage: runtime packages: $(tr '\n' ' ' <"$packages")" >&2

# The installed tree must work on its own: run it from another folder, the built-in model found from bin/../share.
img=$(realpath samples/chelsea.png)
(cd / && env -u VIT_DEFAULT_MODEL "$vit" info >/dev/null) || { echo "build-stage: $vit info failed" >&2; exit 1; }
top=$(cd / && env -u VIT_DEFAULT_MODEL "$vit" classify --format jsonl -k 1 "$img" | sed -n 's/.*"label":"\([^"]*\)".*/\1/p')
[[ -n $top ]] || { echo "build-stage: $vit classify $img gave no label" >&2; exit 1; }
echo "build-stage: $prefix/bin/vit classify chelsea.png (built-in model): $top" >&2
