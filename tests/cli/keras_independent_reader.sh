#!/usr/bin/env bash
# The independent Keras reader (tests/tools/keras_h5_reader.py, numpy+h5py)
# is what check_keras uses to verify the files cnnviz WRITES. Here it proves
# itself first: on every real legacy .h5 in shared/data/keras it must
# reproduce, layer by layer, the reference outputs in expected/<name>/
# layers_img0 (made by a different numpy reader) to 2e-6 relative (both are
# float64; the C code gets 1e-5 in check_keras).
# Skipped (77) without /usr/bin/python3 + numpy + h5py or the shared data.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/MANIFEST.md
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import numpy, h5py' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 with numpy and h5py is needed"; exit 77
fi
READER=$CNNVIZ_SOURCE_DIR/tests/tools/keras_h5_reader.py
K=$SHARED/data/keras
for model in "$K"/*.h5; do
  name=$(basename "$model" .h5)
  ref=$K/expected/$name/layers_img0
  [ -f "$ref/input.npy" ] || { fail "$name: no $ref/input.npy"; continue; }
  mkdir -p "$TMP/$name"
  if ! "$PY" "$READER" "$model" "$ref/input.npy" --dump "$TMP/$name" >"$TMP/$name.out" 2>"$TMP/err"; then
    fail "$name: reader failed: $(cat "$TMP/err")"; continue
  fi
  # our dumps are numbered without the InputLayer; match files by layer name
  if report=$("$PY" - "$ref" "$TMP/$name" <<'PY'
import sys, glob, os
import numpy as np
ref, got = sys.argv[1], sys.argv[2]
mine = {os.path.basename(p)[3:]: p for p in glob.glob(got + "/*.npy")}
theirs = {os.path.basename(p)[3:]: p for p in glob.glob(ref + "/[0-9][0-9]_*.npy")}
missing = [n for n in mine if n not in theirs]
if missing or len(theirs) - len(mine) not in (0, 1):
    print("layers differ:", sorted(mine), sorted(theirs)); sys.exit(1)
worst = 0.0
for n, p in mine.items():
    a, b = np.load(p).astype(np.float64), np.load(theirs[n]).astype(np.float64)
    if a.shape != b.shape:
        print(n, "shape", a.shape, b.shape); sys.exit(1)
    # relative, with a floor of a tenth of the layer's largest value (as check_keras.c):
    # near-zero outputs are sums of O(1) terms, float32 inputs make them ~1e-7 off
    floor = max(1e-3, 0.1 * float(np.abs(b).max()))
    worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))))
print("%d layers, worst relative difference %.3g" % (len(mine), worst))
sys.exit(0 if worst <= 2e-6 else 1)
PY
  ); then pass; echo "$name: $report"; else fail "$name: $report"; fi
done
finish
