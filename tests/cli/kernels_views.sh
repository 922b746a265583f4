#!/usr/bin/env bash
# kernels: a norm heatmap and each map's strongest inputs for deep convs (the
# whole matrix with --top 0), and Dense layers folded back onto their maps.
. "$(dirname "$0")/lib.bash"
size() { "$CNNVIZ" checksum "$1" | awk '{print $2}'; }
sum() { "$CNNVIZ" checksum "$1" | cut -d' ' -f1; }
"$CNNVIZ" kernels --layer conv2d_1 -o "$TMP/summary.png" --quiet
"$CNNVIZ" kernels --layer conv2d_1 -o "$TMP/matrix.png" --top 0 --quiet
"$CNNVIZ" kernels --layer conv2d_1 -o "$TMP/top2.png" --top 2 --quiet
check "the summary is not the 64x32 matrix" test "$(size "$TMP/summary.png")" != "$(size "$TMP/matrix.png")"
check "--top 2 draws fewer kernels a map" test "$(sum "$TMP/top2.png")" != "$(sum "$TMP/summary.png")"
"$CNNVIZ" kernels --layer dense -o "$TMP/folded.png" --quiet
"$CNNVIZ" kernels --layer dense -o "$TMP/flat.png" --no-fold --quiet
check "a Dense after Flatten is folded onto its 3x3x64 maps" test "$(size "$TMP/folded.png")" != "$(size "$TMP/flat.png")"
"$CNNVIZ" kernels --layer dense_1 -o "$TMP/d1.png" --quiet
"$CNNVIZ" kernels --layer dense_1 -o "$TMP/d1b.png" --no-fold --quiet
check "a Dense after a Dense has nothing to fold" test "$(sum "$TMP/d1.png")" = "$(sum "$TMP/d1b.png")"
expect_error 2 "^cnnviz: kernels: --top: '65' is not a whole number from 0 to 64" "$CNNVIZ" kernels --layer 2 --top 65
if [ -n "$SHARED" ] && [ -e "$SHARED/data/keras/k3h5_mlp.h5" ]; then
  # an MLP on flat 784 pixels: a 28x28 tile per unit, 64 units
  "$CNNVIZ" kernels "$SHARED/data/keras/k3h5_mlp.h5" --layer 0 -o "$TMP/mlp.png" --quiet
  IFS=x read -r w h <<<"$(size "$TMP/mlp.png")"
  check "MLP units as 28x28 tiles: a grid, not a 784-wide strip (${w}x$h)" test "$h" -gt 400 -a "$w" -lt 1000
fi
finish
