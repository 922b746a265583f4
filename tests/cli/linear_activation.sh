#!/usr/bin/env bash
# A linear Conv2D followed by its own Activation layer: filters maximises the
# activated output by default and says so; --pre-activation keeps the linear one.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_5x5_same_dropout.h5
M=$SHARED/data/keras/tfk2_5x5_same_dropout.h5
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
out=$("$CNNVIZ" filters "$M" --layer conv2d_1 --steps 20 --json -o "$TMP/a.png")
check "shows activation_1: $(py 'd["layer"]' <<<"$out")" test "$(py 'd["layer"], d["activation_of"]' <<<"$out")" = "activation_1 conv2d_1"
check "activated maps are never negative" test "$(py 'min(m["activation"] for m in d["maps"]) >= 0' <<<"$out")" = True
err=$("$CNNVIZ" filters "$M" --layer conv2d_1 --steps 20 -o "$TMP/b.png" 2>&1 >/dev/null)
check "says it shows the activated output: $err" grep -q "showing its activated output 'activation_1' (relu); --pre-activation" <<<"$err"
out=$("$CNNVIZ" filters "$M" --layer conv2d_1 --steps 20 --json --pre-activation -o "$TMP/c.png")
check "--pre-activation shows conv2d_1" test "$(py 'd["layer"], "activation_of" in d' <<<"$out")" = "conv2d_1 False"
check "the two figures differ" bash -c "! cmp -s '$TMP/a.png' '$TMP/c.png'"
err=$("$CNNVIZ" kernels "$M" --layer conv2d_1 -o "$TMP/k.png" 2>&1 >/dev/null)
check "kernels names the activated layer: $err" grep -q "layer 'conv2d_1' is linear: its activated output is layer 'activation_1' (relu)" <<<"$err"
err=$("$CNNVIZ" activations "$M" "$CNNVIZ_SOURCE_DIR/samples/digit-3.png" --layer conv2d_1 -o "$TMP/act.png" 2>&1 >/dev/null)
check "activations names the activated layer" grep -q "its activated output is layer 'activation_1'" <<<"$err"
# a layer with its own ReLU is left alone
out=$("$CNNVIZ" filters --layer conv2d_1 --steps 5 --json -o "$TMP/d.png")
check "the bundled model's conv2d_1 is shown itself" test "$(py 'd["layer"], "activation_of" in d' <<<"$out")" = "conv2d_1 False"
finish
