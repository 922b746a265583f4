#!/usr/bin/env bash
# The committed colormap tables (src/render/colormaps.c) are what
# tools/gen_colormaps.py makes from the installed matplotlib, entry for entry,
# and each colormap renders (a figure per --cmap, different pixels each).
. "$(dirname "$0")/lib.bash"
if ! /usr/bin/python3 -c 'import matplotlib, numpy' 2>/dev/null; then
  echo "SKIP: python3-matplotlib not installed"; exit 77
fi
/usr/bin/python3 "$CNNVIZ_SOURCE_DIR/tools/gen_colormaps.py" > "$TMP/colormaps.c" || fail "gen_colormaps.py failed"
# the first line names the matplotlib version; the tables must be equal
if diff <(tail -n +2 "$TMP/colormaps.c") <(tail -n +2 "$CNNVIZ_SOURCE_DIR/src/render/colormaps.c") > "$TMP/diff"; then
  pass
else
  fail "src/render/colormaps.c differs from matplotlib's tables: $(head -5 "$TMP/diff")"
fi
check "four tables of 256 entries" test "$(grep -c '^    {' "$CNNVIZ_SOURCE_DIR/src/render/colormaps.c")" = 256

if [ -n "$SHARED" ] && [ -e "$SHARED/data/keras/tfk2_15_cnn.h5" ]; then
  M=$SHARED/data/keras/tfk2_15_cnn.h5
  X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@1
  for c in gray viridis magma RdBu; do
    "$CNNVIZ" activations "$M" "$X" --layer 0 --cmap "$c" -o "$TMP/$c.png" --quiet || fail "--cmap $c failed"
    "$CNNVIZ" checksum "$TMP/$c.png" | cut -d' ' -f1 >> "$TMP/sums"
  done
  check "each colormap gives a different figure" test "$(sort -u "$TMP/sums" | wc -l)" = 4
fi
finish
