#!/usr/bin/env bash
# Builds vit (Release) and packages it with CPack: a Debian package (vit_VERSION_ARCH.deb, installs under /usr,
# Depends computed by dpkg-shlibdeps) and a relocatable tarball (vit-VERSION-Linux-ARCH.tar.gz: unpack anywhere,
# run bin/vit). Prints the paths, their sizes and the .deb's Depends. Usage: scripts/package.sh
# (VIT_BUILD_DIR overrides build/; the packages go to BUILD/packages/; needs dpkg-dev and file, see setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${VIT_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build" -j"$(nproc)" >&2
rm -f "$build"/packages/vit_*.deb "$build"/packages/vit-*.tar.gz
(cd "$build" && cpack -G "DEB;TGZ" >&2)
for f in "$build"/packages/vit_*.deb "$build"/packages/vit-*.tar.gz; do
  echo "$f  $(stat -c %s "$f") bytes"
done
echo "Depends: $(dpkg-deb -f "$build"/packages/vit_*.deb Depends)"
