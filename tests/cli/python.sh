#!/usr/bin/env bash
# The Python package (python/cnnviz, ctypes) against this build's libcnnviz.so
# and cnnviz command: pytest python/tests.
. "$(dirname "$0")/lib.bash"
BUILD=$(dirname "$CNNVIZ")
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy, pytest' 2>/dev/null; then
  echo "SKIP: python3-numpy and python3-pytest are needed (scripts/install-deps.sh)"
  exit 77
fi
# Python itself is not built with ASan, which must be the first library loaded.
if grep -q '^CNNVIZ_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo "SKIP: a sanitizer build's libcnnviz.so cannot be loaded by python3"
  exit 77
fi
export CNNVIZ_LIBRARY=$BUILD/libcnnviz.so PYTHONPATH=$CNNVIZ_SOURCE_DIR/python${PYTHONPATH:+:$PYTHONPATH}
export CNNVIZ_SHARED=$SHARED
cd "$TMP" || exit 1
"$PY" -m pytest -q -p no:cacheprovider "$CNNVIZ_SOURCE_DIR/python/tests"
