#!/usr/bin/env bash
# Defects a new user met (issue: right answers on the models users bring), each
# checked here: the wrong count, command name, exit code or message they saw.
. "$(dirname "$0")/lib.bash"
D=$CNNVIZ_SOURCE_DIR/samples/digit-7.png
# an unknown --input-scale is a usage error of the command, exit 2, with its name in the hint
out=$("$CNNVIZ" predict --input-scale half "$D" 2>&1); rc=$?
check "--input-scale half exits 2 (got $rc)" test "$rc" = 2
check "--input-scale half names the command: $out" grep -q "Try 'cnnviz predict --help'" <<<"$out"
expect_error 2 "^cnnviz: predict: --input-scale: 'half' is not" "$CNNVIZ" predict --input-scale half "$D"
# a flag given a value says so, not "needs an argument"
expect_error 2 "^cnnviz: predict: option '--quiet' takes no argument$" "$CNNVIZ" predict --quiet=0 "$D"
expect_error 2 "^cnnviz: predict: option '--bogus=1' is not known$" "$CNNVIZ" predict --bogus=1 "$D"
# an output that is a directory is named as one, and nothing is written into it
mkdir "$TMP/out"
expect_error 1 "^cnnviz: $TMP/out/: is a directory" "$CNNVIZ" filters --layer 0 --steps 2 -o "$TMP/out/"
expect_error 1 "^cnnviz: $TMP/out: is a directory" "$CNNVIZ" activations "$D" -o "$TMP/out"
check "nothing written into the directory" test -z "$(ls -A "$TMP/out")"
# --threads 0 is documented (one per core) and gives the default's answer
check "--help documents --threads 0" grep -q -- "--threads N .*0 or absent: one per core" <<<"$("$CNNVIZ" predict --help)"
check "--threads 0 predicts like the default" test "$("$CNNVIZ" predict --threads 0 --json "$D")" = "$("$CNNVIZ" predict --json "$D")"
expect_error 2 "^cnnviz: predict: --threads: '-1' is not a whole number" "$CNNVIZ" predict --threads -1 "$D"
# a folder without the data set says where to get MNIST
expect_error 1 "^cnnviz: $TMP/out: no t10k-images.*https://" "$CNNVIZ" evaluate --data "$TMP/out"
# the K-th image of an IDX file: the count in the error is the file's
if [ -n "$SHARED" ] && [ -e "$SHARED/data/mnist/t10k-images-idx3-ubyte.gz" ]; then
  I=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz
  expect_error 1 "^cnnviz: $I: image index 10000 is out of range \(the file has 10000 images, 0 to 9999\)$" \
    "$CNNVIZ" predict "$I@10000"
else
  echo "note: IDX index check skipped (no shared MNIST)"
fi
finish
