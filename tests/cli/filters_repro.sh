#!/usr/bin/env bash
# cnnviz filters: the same seed gives byte-identical PNG and dump (also with
# another thread count), another seed other patterns; --json, the dump and
# the snapshot strip hold what the help promises.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
M=$SHARED/data/keras/tfk2_15_cnn.h5
PY=/usr/bin/python3
args=(filters "$M" --layer conv2d_6 --maps 0-5,9 --steps 30 --restarts 2 -o f.png --dump f.h5 --quiet --seed)
mkdir -p "$TMP/a" "$TMP/b" "$TMP/c" "$TMP/d"
(cd "$TMP/a" && "$CNNVIZ" "${args[@]}" 7) || fail "first run"
(cd "$TMP/b" && "$CNNVIZ" "${args[@]}" 7) || fail "second run"
(cd "$TMP/c" && "$CNNVIZ" "${args[@]}" 7 --threads 1) || fail "one-thread run"
check "same seed: same PNG bytes" cmp -s "$TMP/a/f.png" "$TMP/b/f.png"
check "same seed: same dump bytes" cmp -s "$TMP/a/f.h5" "$TMP/b/f.h5"
check "--threads 1: same dump bytes" cmp -s "$TMP/a/f.h5" "$TMP/c/f.h5"
check "--threads 1: same pixels" [ "$("$CNNVIZ" checksum "$TMP/a/f.png" | cut -d' ' -f1)" = "$("$CNNVIZ" checksum "$TMP/c/f.png" | cut -d' ' -f1)" ]
(cd "$TMP/d" && "$CNNVIZ" "${args[@]}" 8) || fail "other seed"
if cmp -s "$TMP/a/f.h5" "$TMP/d/f.h5"; then fail "another seed gave the same dump"; else pass; fi

# --json: the contract's fields, maps in the order asked, every live map above its start
out=$("$CNNVIZ" filters "$M" --layer 2 --maps 3,0-1 --steps 30 -o "$TMP/j.png" --json --dump "$TMP/j.h5" --snapshots 10) || fail "json run"
if $PY -c 'import h5py, numpy' 2>/dev/null; then
  $PY - "$out" "$TMP/j.h5" <<'PY' && pass || fail "json and dump contents"
import json, sys, h5py, numpy as np
r = json.loads(sys.argv[1])
assert r["layer"] == "conv2d_6" and r["index"] == 2, r
assert [m["map"] for m in r["maps"]] == [3, 0, 1], r["maps"]
for m in r["maps"]:
    assert set(m) >= {"map", "activation", "dead"} and isinstance(m["dead"], bool), m
    assert m["dead"] or m["activation"] > m["start_activation"], m
f = h5py.File(sys.argv[2], "r")
assert f["images"].shape == (3, 28, 28, 1) and f["start"].shape == (3, 28, 28, 1), f["images"].shape
assert f["activations"].shape == (3,)
img = f["images"][...]
assert img.min() >= 0 and img.max() <= 1 and img.std() > 0.05, (img.min(), img.max())
assert np.allclose(f["activations"][...], [m["activation"] for m in r["maps"]], rtol=1e-6)
assert list(f["maps"][...]) == [3, 0, 1]
PY
else
  echo "note: dump contents not checked (python3-h5py not installed)"
fi
check "snapshot strip written" test -s "$TMP/j-snapshots.png"
# a titled figure of 3 rows (maps) by 4 columns (steps 0, 10, 20, 30) of 84-pixel tiles
IFS=x read -r sw sh <<<"$("$CNNVIZ" checksum --json "$TMP/j-snapshots.png" | sed -E 's/.*"width": *([0-9]+).*"height": *([0-9]+).*/\1x\2/')"
check "snapshot figure: 4 columns of tiles and a title (${sw}x$sh)" [ "$sw" -ge $((4 * 84)) -a "$sh" -ge $((3 * 84)) -a "$sw" -gt "$sh" ]
# vector output and --neuron on a conv layer
check "svg figure" "$CNNVIZ" filters "$M" --layer 0 --maps 0-3 --neuron 5,5 --steps 10 -o "$TMP/n.svg" --quiet
check "svg is svg" grep -q "<svg" "$TMP/n.svg"
# a digit as the start
check "--init IDX image" "$CNNVIZ" filters "$M" --layer 7 --steps 10 --init "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0" -o "$TMP/d.png" --quiet
check "--help" sh -c "'$CNNVIZ' filters --help | grep -q -- '--grad-norm'"
finish
