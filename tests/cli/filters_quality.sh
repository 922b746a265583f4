#!/usr/bin/env bash
# The issue's quality bar on the bundled model, measured against the 10,000
# MNIST test digits by bench_oip_quality: coverage >= 95% for each Conv2D
# layer, selectivity >= 70% (first conv layer) / 90% (the others).
. "$(dirname "$0")/lib.bash"
need_shared data/mnist/t10k-images-idx3-ubyte.gz
MODEL=${CNNVIZ_QUALITY_MODEL:-$CNNVIZ_SOURCE_DIR/samples/model.h5} # another model: set CNNVIZ_QUALITY_MODEL
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not there yet"; exit 77; }
Q=$(dirname "$CNNVIZ")/bench_oip_quality
[ -x "$Q" ] || { echo "SKIP: $Q not built"; exit 77; }
if "$Q" "$MODEL" --images "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz" | tee "$TMP/q.txt"; then pass; else fail "quality bar missed"; fi
finish
