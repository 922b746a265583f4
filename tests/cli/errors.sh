#!/usr/bin/env bash
# Bad input gets one line "cnnviz: FILE: problem", exit 1 (2 for usage), and no output file.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/bad
K=$SHARED/data/keras
D=$SHARED/data/digits
M=$K/tfk2_15_cnn.h5
for f in "$K"/bad/*; do
  expect_error 1 "^cnnviz: $f: " "$CNNVIZ" summary "$f"
done
expect_error 1 "weights only" "$CNNVIZ" summary "$K/bad/weights_only_k2.h5"
expect_error 1 "UpSampling2D" "$CNNVIZ" summary "$K/bad/unsupported_upsampling2d_k3.h5"
expect_error 1 "lfs" "$CNNVIZ" summary "$K/bad/lfs_pointer.h5"
for f in "$D"/bad/*; do
  expect_error 1 "^cnnviz: $f: " "$CNNVIZ" predict "$M" "$f"
done
# a wrong image size without preprocessing
expect_error 1 "28x28" "$CNNVIZ" predict "$M" --no-preprocess "$D/5_thick80_1.png"
# corrupt IDX files
printf 'not an idx file at all' > "$TMP/bad-idx"
expect_error 1 "^cnnviz: $TMP/bad-idx: " "$CNNVIZ" predict "$M" "$TMP/bad-idx@0"
head -c 5000 <(gzip -dc "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz") > "$TMP/short-idx"
expect_error 1 "^cnnviz: $TMP/short-idx: " "$CNNVIZ" evaluate "$M" --images "$TMP/short-idx" --labels "$SHARED/data/mnist/t10k-labels-idx1-ubyte.gz"
expect_error 1 "out of range" "$CNNVIZ" predict "$M" "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@10000"
# a NaN weight (made with h5py from a good model, when h5py is installed)
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  cp "$M" "$TMP/nan.h5"
  /usr/bin/python3 - "$TMP/nan.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    names = []
    f["model_weights"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    k = [n for n in names if n.endswith("kernel:0")][0]
    d = f["model_weights"][k]; a = d[...]; a.flat[5] = float("nan"); d[...] = a
PY
  expect_error 1 "^cnnviz: $TMP/nan.h5: .*(NaN|non-finite)" "$CNNVIZ" predict "$TMP/nan.h5" "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0"
  rm -f "$TMP/nan.h5"
else
  echo "note: NaN-weight check skipped (python3-h5py not installed)"
fi
# usage errors exit 2
expect_error 2 "not known" "$CNNVIZ" summary --no-such-option
expect_error 2 "not a cnnviz command" "$CNNVIZ" frobnicate
expect_error 2 "no IMAGE" "$CNNVIZ" predict "$M"
expect_error 2 "whole number" "$CNNVIZ" evaluate "$M" --limit -3
# no partial file on failure
expect_error 1 "" "$CNNVIZ" evaluate "$K/bad/truncated_60pct.h5" --predictions "$TMP/pred.txt"
check "no partial predictions file" test ! -e "$TMP/pred.txt"
expect_error 1 "" "$CNNVIZ" evaluate "$M" --data "$SHARED/data/mnist" --predictions "$TMP/no/such/dir/pred.txt"
check "no stray temporary files" test -z "$(find "$TMP" -name '*.tmp*')"
finish
