#!/usr/bin/env bash
# Formats the C++ sources with clang-format and the root .clang-format (lib/, app/, tests/*.cpp|hpp, tests/fuzz/,
# scripts/bench/*.cpp). Usage: scripts/format.sh [--check] [FILE...]
#   --check   change nothing; list the files that are not formatted and exit 1 if there are any
#             (clang-format --dry-run --Werror), as CI runs it
#   FILE...   only these files (default: all of the above)
# Env: CLANG_FORMAT (default clang-format-14, else clang-format; Debian: apt-get install clang-format-14).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
cf=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [[ -z $cf ]]; then
  echo "format.sh: clang-format not found (Debian: apt-get install clang-format-14)" >&2
  exit 1
fi
files=("$@")
if ((${#files[@]} == 0)); then
  mapfile -t files < <(git ls-files 'lib/*.cpp' 'lib/*.hpp' 'app/*.cpp' 'app/*.hpp' 'tests/*.cpp' 'tests/*.hpp' \
    'tests/fuzz/*.cpp' 'tests/fuzz/*.hpp' 'scripts/bench/*.cpp')
fi
if ((check)); then
  bad=()
  for f in "${files[@]}"; do
    "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    printf 'format.sh: not formatted (run scripts/format.sh %s):\n' "${bad[*]}" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted"
else
  "$cf" --style=file -i "${files[@]}"
fi
