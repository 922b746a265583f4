#!/usr/bin/env bash
# An image's probabilities are the same bits whatever batch it comes in and
# however many threads run: `evaluate --probs` over the first 1, 7, 37 and
# 300 test images agree line for line on the images they share, with 1 and
# 2 threads, and `predict` of one image alone gives that image's line.
# (With OpenBLAS' Haswell sgemm the engine failed all three.)
. "$(dirname "$0")/lib.bash"
need_shared data/mnist/t10k-images-idx3-ubyte.gz
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz
L=$SHARED/data/mnist/t10k-labels-idx1-ubyte.gz
M=$CNNVIZ_SOURCE_DIR/samples/model.h5
cd "$TMP" || exit 1

for t in 1 2; do
  for n in 1 7 37 300; do
    check "evaluate --limit $n --threads $t" \
      "$CNNVIZ" evaluate "$M" --images "$X" --labels "$L" --limit "$n" --threads "$t" --probs "p$n-$t.txt" --quiet
  done
done
[ "$(wc -l < p300-1.txt)" = 300 ] && pass || fail "p300-1.txt has $(wc -l < p300-1.txt) lines, not 300"
for t in 1 2; do
  for n in 1 7 37; do
    if cmp -s <(head -n "$n" p300-1.txt) "p$n-$t.txt"; then pass; else
      fail "the first $n images alone (--threads $t) differ from the same images in a batch of 300"; fi
  done
done
cmp -s p300-1.txt p300-2.txt && pass || fail "300 images: --threads 1 and 2 differ"

# predict prints each float32 probability as a double; the probs file has
# %.9e, enough to tell float32 values apart: round both to float32
for k in 0 5 36; do
  "$CNNVIZ" predict "$M" "$X@$k" --json --quiet > "one$k.json" || { fail "predict $X@$k"; continue; }
  if /usr/bin/python3 - "one$k.json" p300-1.txt "$k" <<'PY'
import json, struct, sys
f32 = lambda x: struct.unpack("f", struct.pack("f", float(x)))[0]
one = [f32(v) for v in json.load(open(sys.argv[1]))[0]["probs"]]
line = open(sys.argv[2]).read().splitlines()[int(sys.argv[3])].split()
sys.exit(0 if one == [f32(v) for v in line] else 1)
PY
  then pass; else fail "predict of image $k alone differs from its line in a batch of 300"; fi
done
finish
