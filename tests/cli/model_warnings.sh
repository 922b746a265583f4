#!/usr/bin/env bash
# A model fed what it was not trained on says so and names the fix; a model
# fed right says nothing (issue: right answers on the models users bring).
. "$(dirname "$0")/lib.bash"
need_shared data/keras/expected
need_shared data/mnist/t10k-images-idx3-ubyte.gz
K=$SHARED/data/keras
D=$CNNVIZ_SOURCE_DIR/samples/digit-3.png
json_field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# trained on raw pixels, no Rescaling layer: x/255 gives ~0.10 everywhere
err=$("$CNNVIZ" predict "$K/tfk2_same_pool4_raw.h5" "$D" 2>&1 >/dev/null)
check "raw model fed x/255 warns, naming --input-scale raw: $err" grep -q "^cnnviz: warning: .*near uniform.*--input-scale raw" <<<"$err"
out=$("$CNNVIZ" predict "$K/tfk2_same_pool4_raw.h5" "$D" --input-scale raw --json 2>"$TMP/err")
check "with --input-scale raw: digit 3" test "$(json_field 'd[0]["class"]' <<<"$out")" = 3
check "with --input-scale raw: no warning in --json" test "$(json_field 'len(d[0]["warnings"])' <<<"$out")" = 0
check "with --input-scale raw: no warning on stderr" bash -c "! grep -q warning '$TMP/err'"

# starts with Rescaling(1/255): fed raw pixels by default, and says so
out=$("$CNNVIZ" evaluate "$K/k3_bn_rescaling_aug.keras" --json 2>"$TMP/err")
check "Rescaling model: accuracy 0.9914 with no flag ($out)" test "$(json_field 'd["accuracy"]' <<<"$out")" = 0.9914
check "Rescaling model: the raw feed is reported" grep -q "rescales its input itself (layer 'rescaling')" "$TMP/err"
out=$("$CNNVIZ" filters "$K/k3_bn_rescaling_aug.keras" --layer conv2d_1 --json -o "$TMP/f.png" --quiet)
check "Rescaling model: no dead conv2d_1 map" test "$(json_field 'sum(m["dead"] for m in d["maps"])' <<<"$out")" = 0
# ... and fed x/255 by force, most maps die: the warning says so
out=$("$CNNVIZ" filters "$K/k3_bn_rescaling_aug.keras" --layer conv2d_1 --input-scale unit --json -o "$TMP/f.png" --quiet)
check "forced x/255: dead-map warning" grep -q "maps of layer 'conv2d_1' are dead" <<<"$(json_field 'd["warnings"]' <<<"$out")"

# k2_conv4 saw transposed raw images: the accuracy warning names both fixes
out=$("$CNNVIZ" evaluate "$K/k2_conv4_kaggle_transposed.h5" --limit 1000 --json 2>/dev/null)
check "transposed model: near-chance warning ($out)" grep -q "near chance.*--input-scale raw, or --transpose" <<<"$out"

# no warning on the bundled model and on every shared model fed as it was trained
models=("$CNNVIZ_SOURCE_DIR/samples/model.h5")
for f in "$K"/*.h5 "$K"/*.keras; do models+=("$f"); done
for f in "${models[@]}"; do
  name=$(basename "$f"); acc=$K/expected/${name%.*}/accuracy.txt
  [ -e "$acc" ] || acc=$K/expected/$name/accuracy.txt
  flags=()
  if [ -e "$acc" ]; then
    grep -q "^scale none" "$acc" && flags+=(--input-scale raw)
    grep -q "^scale .*transpose" "$acc" && flags+=(--transpose)
    grep -q "^dataset fashion" "$acc" && flags+=(--dataset fashion)
  fi
  out=$("$CNNVIZ" evaluate "$f" "${flags[@]}" --limit 1000 --json 2>"$TMP/err")
  check "$name ${flags[*]}: no warning ($out)" test "$(json_field 'len(d["warnings"])' <<<"$out")" = 0
  check "$name: nothing on stderr says warning" bash -c "! grep -q warning '$TMP/err'"
  out=$("$CNNVIZ" predict "$f" "${flags[@]}" "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0" --json 2>/dev/null)
  case "$name" in *fashion*) ;; *)
    check "$name: predict gives no warning" test "$(json_field 'len(d[0]["warnings"])' <<<"$out")" = 0 ;;
  esac
done
finish
