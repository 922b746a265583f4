#!/usr/bin/env bash
# Every real Keras model in shared/data/keras runs through `cnnviz evaluate` on
# its whole test set and agrees with the independent reader's expected/ files:
# accuracy within 0.02%, predictions on >= 9,998 of 10,000 images, the first
# 100 images' probabilities within 1e-5.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/MANIFEST.md
need_shared data/mnist/t10k-images-idx3-ubyte.gz
K=$SHARED/data/keras
for model in "$K"/*.h5 "$K"/*.keras; do
  name=$(basename "$model"); name=${name%.*}
  exp=$K/expected/$name
  [ -f "$exp/accuracy.txt" ] || { fail "$name: no expected/accuracy.txt"; continue; }
  args=()
  grep -q '^scale none' "$exp/accuracy.txt" && args+=(--input-scale raw)
  grep -q '^scale 255' "$exp/accuracy.txt" && args+=(--input-scale unit)
  grep -q '^scale .*transpose' "$exp/accuracy.txt" && args+=(--transpose)
  if grep -q '^dataset fashion-mnist' "$exp/accuracy.txt"; then
    if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
      echo "note: $name skipped (Fashion-MNIST not installed: apt-get install dataset-fashion-mnist)"; continue
    fi
    args+=(--dataset fashion)
  else
    args+=(--data "$SHARED/data/mnist")
  fi
  if ! "$CNNVIZ" evaluate "$model" "${args[@]}" --quiet --json --predictions "$TMP/pred.txt" --probs "$TMP/probs.txt" >"$TMP/eval.json" 2>"$TMP/err"; then
    fail "$name: evaluate failed: $(cat "$TMP/err")"; continue
  fi
  want=$(awk '/^accuracy/{print $2}' "$exp/accuracy.txt")
  got=$(sed -E 's/.*"accuracy": *([0-9.]+).*/\1/' "$TMP/eval.json")
  if awk -v a="$got" -v b="$want" 'BEGIN{d=a-b; if (d<0) d=-d; exit !(d <= 0.0002 + 1e-9)}'; then pass
  else fail "$name: accuracy $got, expected $want"; fi
  same=$(paste -d' ' "$TMP/pred.txt" "$exp/pred_all.txt" | awk '$1==$2{n++} END{print n+0}')
  if [ "$same" -ge 9998 ]; then pass; else fail "$name: predictions agree on $same of 10000"; fi
  worst=$(head -100 "$TMP/probs.txt" | paste -d' ' - "$exp/probs_first100.txt" |
          awk '{h=NF/2; for(i=1;i<=h;i++){d=$i-$(i+h); if(d<0)d=-d; if(d>w)w=d}} END{printf "%.3g", w+0}')
  if awk -v w="$worst" 'BEGIN{exit !(w <= 1e-5)}'; then pass; else fail "$name: probabilities differ by up to $worst"; fi
  echo "$name: accuracy $got (expected $want), predictions agree $same/10000, max |dp| $worst"
done
finish
