#!/usr/bin/env bash
# The activations figure fits a page: panels flow into page columns (--cols
# sets them, 1 is the old single column), the input and probability panels can
# be left out, and a panel with negative values is drawn on RdBu around 0.
. "$(dirname "$0")/lib.bash"
D=$CNNVIZ_SOURCE_DIR/samples/digit-7.png
size() { "$CNNVIZ" checksum "$1" | awk '{print $2}'; }
"$CNNVIZ" activations "$D" -o "$TMP/auto.png" --quiet
"$CNNVIZ" activations "$D" -o "$TMP/one.png" --cols 1 --quiet
"$CNNVIZ" activations "$D" -o "$TMP/three.png" --cols 3 --quiet
IFS=x read -r aw ah <<<"$(size "$TMP/auto.png")"
IFS=x read -r ow oh <<<"$(size "$TMP/one.png")"
IFS=x read -r tw th <<<"$(size "$TMP/three.png")"
check "one column is a tall strip (${ow}x$oh)" test "$oh" -gt $((3 * ow))
check "the default is near a page's shape (${aw}x$ah)" test $((10 * ah)) -le $((20 * aw)) -a $((10 * aw)) -le $((20 * ah))
check "more columns: wider and shorter (${tw}x$th against ${aw}x$ah)" test "$tw" -gt "$aw" -a "$th" -lt "$ah"
expect_error 2 "^cnnviz: activations: --cols: '5' is not a whole number from 1 to 4" "$CNNVIZ" activations "$D" --cols 5
"$CNNVIZ" activations "$D" -o "$TMP/bare.png" --no-input --no-probs --quiet
"$CNNVIZ" activations "$D" -o "$TMP/noin.png" --no-input --quiet
check "--no-input and --no-probs draw less" test "$(size "$TMP/bare.png")" != "$(size "$TMP/noin.png")" -a "$(size "$TMP/noin.png")" != "$(size "$TMP/auto.png")"
check "--no-probs still prints the prediction" bash -c "'$CNNVIZ' activations '$D' -o '$TMP/x.png' --no-probs | grep -q 'predicted 7'"
# BatchNormalization outputs are negative in places: RdBu around 0 unless a colormap is asked for
if [ -n "$SHARED" ] && [ -e "$SHARED/data/keras/k2_fashion_bn.h5" ]; then
  M=$SHARED/data/keras/k2_fashion_bn.h5
  "$CNNVIZ" activations "$M" "$D" --layer 1 -o "$TMP/bn.png" --no-input --no-probs --quiet
  "$CNNVIZ" activations "$M" "$D" --layer 1 -o "$TMP/bn_gray.png" --no-input --no-probs --cmap gray --quiet
  check "negative values are not drawn on the one-sided grey scale" test "$("$CNNVIZ" checksum "$TMP/bn.png" | cut -d' ' -f1)" != "$("$CNNVIZ" checksum "$TMP/bn_gray.png" | cut -d' ' -f1)"
fi
finish
