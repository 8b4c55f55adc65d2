#!/usr/bin/env bash
# Installs vit's build dependencies from Debian and builds it into build/ (Release).
# Usage: scripts/setup.sh [--no-install]     (VIT_BUILD_DIR overrides build/)
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: Debian's dnnl-config.cmake runs find_package(OpenCL REQUIRED) (oneDNN is built with the OCL
# GPU runtime), and libdnnl-dev only recommends it, so --no-install-recommends alone leaves cmake failing.
# dpkg-dev (dpkg-shlibdeps) computes the .deb's Depends, on the binaries CPack finds with file;
# man-db and zsh: the package test renders the man page and parses the zsh completion.
packages=(build-essential cmake pkg-config libopencv-dev libdnnl-dev ocl-icd-opencl-dev libcli11-dev nlohmann-json3-dev doctest-dev jq
          dpkg-dev file man-db zsh)

if [[ "${1:-}" != "--no-install" ]]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

build="${VIT_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build" -j"$(nproc)" >&2
echo "setup: built $build/vit" >&2
