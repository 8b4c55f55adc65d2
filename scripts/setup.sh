#!/usr/bin/env bash
# Installs vit's build dependencies from Debian and builds it into build/ (Release).
# Usage: scripts/setup.sh [--no-install]     (VIT_BUILD_DIR overrides build/; VIT_CMAKE_ARGS adds cmake arguments)
set -euo pipefail
cd "$(dirname "$0")/.."

# hyperfine: the cold-start rows of scripts/bench/run.py.
# ocl-icd-opencl-dev: Debian's dnnl-config.cmake runs find_package(OpenCL REQUIRED) (oneDNN is built with the OCL
# GPU runtime), and libdnnl-dev only recommends it, so --no-install-recommends alone leaves cmake failing.
# dpkg-dev (dpkg-shlibdeps) computes the .deb's Depends, on the binaries CPack finds with file;
# man-db and zsh: the package test renders the man page and drives the zsh completion; time (GNU time): the
# soak test measures peak RSS.
# libcurl4-openssl-dev + libssl-dev: the Hub client (vit pull) and sha256; python3: the tests' stand-in Hub server.
packages=(build-essential cmake pkg-config libopencv-dev libdnnl-dev ocl-icd-opencl-dev libcli11-dev nlohmann-json3-dev doctest-dev jq hyperfine
          dpkg-dev file man-db zsh time libcurl4-openssl-dev libssl-dev python3)

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
# shellcheck disable=SC2086  # VIT_CMAKE_ARGS: extra cmake arguments, split on spaces (CI: -DVIT_STRICT_WARNINGS=ON)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${VIT_CMAKE_ARGS:-} >&2
cmake --build "$build" -j"$(nproc)" >&2
echo "setup: built $build/vit" >&2
