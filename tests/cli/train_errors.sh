#!/usr/bin/env bash
# cnnviz train on bad input: one clear line, exit 1 (2 for usage), and no
# partial model file; a NaN loss keeps the last good epoch.
. "$(dirname "$0")/lib.bash"
need_shared data/mnist/train-images-idx3-ubyte.gz
MNIST=$SHARED/data/mnist
small=(--data "$MNIST" --arch C4k3-P2-F-D10 --limit 256 --batch 64 --threads 1 --validation none)
no_model() { # no_model WHAT PATH: nothing at PATH, no temporary beside it
  if [ -e "$2" ] || ls "$(dirname "$2")" | grep -q 'tmp-'; then fail "$1: a model file was left"; else pass; fi
}

# architectures it cannot build say what and where
expect_error 1 "^cnnviz: arch 'C32k3-Q2': unknown layer 'Q2' at position 2$" "$CNNVIZ" train -o "$TMP/m.h5" --arch C32k3-Q2
expect_error 1 "^cnnviz: arch 'C32k3-F': the last layer must be D<units>" "$CNNVIZ" train -o "$TMP/m.h5" --arch C32k3-F
expect_error 1 "^cnnviz: arch 'C32-D10': 'D10' needs a flat input" "$CNNVIZ" train -o "$TMP/m.h5" --arch C32-D10
no_model "bad arch" "$TMP/m.h5"
printf '{"class_name": "Sequential", "config": {"layers": [' > "$TMP/bad.json"
expect_error 1 "^cnnviz: $TMP/bad.json: " "$CNNVIZ" train -o "$TMP/m.h5" --config "$TMP/bad.json"
expect_error 1 "^cnnviz: $TMP/missing.json: cannot open" "$CNNVIZ" train -o "$TMP/m.h5" --config "$TMP/missing.json"
# a config without a softmax output cannot be trained
cat > "$TMP/linear.json" <<'EOF'
{"class_name": "Sequential", "config": {"name": "sequential", "layers": [
 {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 28, 28, 1], "dtype": "float32", "name": "input_1"}},
 {"class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "dtype": "float32"}},
 {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "linear", "use_bias": true, "trainable": true, "dtype": "float32"}}]},
 "keras_version": "2.15.0", "backend": "tensorflow"}
EOF
expect_error 1 "^cnnviz: $TMP/linear.json: training needs a softmax output" "$CNNVIZ" train -o "$TMP/m.h5" --config "$TMP/linear.json"
no_model "bad config" "$TMP/m.h5"

# an output it cannot write fails before any training
expect_error 1 "^cnnviz: $TMP/no/such/dir/m.h5: cannot write here" "$CNNVIZ" train -o "$TMP/no/such/dir/m.h5" "${small[@]}"
mkdir "$TMP/adir"
expect_error 1 "^cnnviz: $TMP/adir: is a directory$" "$CNNVIZ" train -o "$TMP/adir" "${small[@]}"
if [ "$(id -u)" != 0 ]; then
  mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
  expect_error 1 "^cnnviz: $TMP/ro/m.h5: cannot write here" "$CNNVIZ" train -o "$TMP/ro/m.h5" "${small[@]}"
  no_model "read-only folder" "$TMP/ro/m.h5"
fi

# corrupt or missing data sets
mkdir "$TMP/data"
printf 'this is not an idx file' | gzip > "$TMP/data/train-images-idx3-ubyte.gz"
cp "$MNIST/train-labels-idx1-ubyte.gz" "$TMP/data/"
expect_error 1 "^cnnviz: $TMP/data/train-images-idx3-ubyte.gz: " "$CNNVIZ" train -o "$TMP/m.h5" --data "$TMP/data" --limit 64
gzip -dc "$MNIST/train-images-idx3-ubyte.gz" | head -c 100000 > "$TMP/data/train-images-idx3-ubyte"
gzip -dc "$MNIST/train-labels-idx1-ubyte.gz" > "$TMP/data/train-labels-idx1-ubyte"
rm "$TMP/data/"*.gz
expect_error 1 "^cnnviz: $TMP/data/train-images-idx3-ubyte: " "$CNNVIZ" train -o "$TMP/m.h5" --data "$TMP/data" --limit 64
expect_error 1 "^cnnviz: $TMP/empty: no train-images" "$CNNVIZ" train -o "$TMP/m.h5" --data "$TMP/empty"
no_model "bad data" "$TMP/m.h5"

# a NaN loss in the first epoch: nothing to keep, nothing written
expect_error 1 "^cnnviz: the loss became NaN or infinite at epoch 1, batch [0-9]+; no epoch completed, no model was written$" \
  "$CNNVIZ" train -o "$TMP/m.h5" "${small[@]}" --optimizer sgd --lr 1e30
no_model "NaN in epoch 1" "$TMP/m.h5"
# a NaN loss in epoch 2 (lr x 1e32 from step 4 = the second epoch): epoch 1's weights are saved
expect_error 1 "^cnnviz: $TMP/m.h5: the loss became NaN or infinite at epoch 2, batch [0-9]+; saved the weights of epoch 1, the last complete one$" \
  "$CNNVIZ" train -o "$TMP/m.h5" "${small[@]}" --quiet --epochs 3 --optimizer sgd --lr 0.01 --decay exponential --decay-rate 1e32 --decay-steps 4 --staircase
check "epoch 1 saved after the NaN" test -s "$TMP/m.h5"
"$CNNVIZ" train -o "$TMP/one.h5" "${small[@]}" --epochs 1 --optimizer sgd --lr 0.01 --quiet
"$CNNVIZ" evaluate "$TMP/m.h5" --data "$MNIST" --limit 30 --probs "$TMP/p1.txt" >/dev/null
"$CNNVIZ" evaluate "$TMP/one.h5" --data "$MNIST" --limit 30 --probs "$TMP/p2.txt" >/dev/null
check "the saved weights are epoch 1's" cmp -s "$TMP/p1.txt" "$TMP/p2.txt"

# usage errors exit 2
expect_error 2 "-o MODEL.h5 is required" "$CNNVIZ" train --epochs 1
expect_error 2 "--optimizer: 'lbfgs' is not rmsprop, sgd or adam" "$CNNVIZ" train -o "$TMP/m.h5" --optimizer lbfgs
expect_error 2 "--nesterov is an SGD option" "$CNNVIZ" train -o "$TMP/m.h5" --nesterov
expect_error 2 "--decay inverse-time needs --decay-rate" "$CNNVIZ" train -o "$TMP/m.h5" --decay inverse-time
expect_error 2 "--arch and --config exclude each other" "$CNNVIZ" train -o "$TMP/m.h5" --arch F-D10 --config x.json
expect_error 2 "--epochs: 'zero' is not a whole number" "$CNNVIZ" train -o "$TMP/m.h5" --epochs zero
expect_error 2 "--val-split must be between 0 and 1" "$CNNVIZ" train -o "$TMP/m.h5" --val-split 1.5
finish
