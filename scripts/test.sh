#!/usr/bin/env bash
# Configure, build and run the whole test suite.
# Usage: scripts/test.sh [BUILD_DIR] [extra cmake arguments...]
#   scripts/test.sh                                   # build/ with warnings as errors
#   scripts/test.sh build-asan -DCNNVIZ_SANITIZE=ON   # the same suite under ASan+UBSan
# Tests read ../shared (or $CNNVIZ_SHARED) and are reported skipped when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCNNVIZ_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
