#!/usr/bin/env bash
# plot history reads a Keras user's own history: json.dump(history.history)
# and a CSVLogger file, both written here by hand.
. "$(dirname "$0")/lib.bash"
cat > "$TMP/history.json" <<'J'
{"loss": [0.42, 0.12, 0.083, 0.064, 0.052], "accuracy": [0.87, 0.963, 0.975, 0.98, 0.984],
 "val_loss": [0.1, 0.066, 0.055, 0.05, 0.051], "val_accuracy": [0.968, 0.979, 0.983, 0.985, 0.985]}
J
# CSVLogger's column order (sorted keys after epoch) and line ends
printf 'epoch,accuracy,loss,val_accuracy,val_loss\r\n' > "$TMP/log.csv"
printf '0,0.87,0.42,0.968,0.1\r\n1,0.963,0.12,0.979,0.066\r\n2,0.975,0.083,0.983,0.055\r\n' >> "$TMP/log.csv"
printf '3,0.98,0.064,0.985,0.05\r\n4,0.984,0.052,0.985,0.051\r\n' >> "$TMP/log.csv"
check "plots a Keras History JSON" "$CNNVIZ" plot history "$TMP/history.json" -o "$TMP/j.png" --title T --quiet
check "plots a CSVLogger file" "$CNNVIZ" plot history "$TMP/log.csv" -o "$TMP/c.png" --title T --quiet
a=$("$CNNVIZ" checksum "$TMP/j.png" | cut -d' ' -f1); b=$("$CNNVIZ" checksum "$TMP/c.png" | cut -d' ' -f1)
check "the JSON and the CSV of the same history draw the same pixels" test "$a" = "$b"
cp "$TMP/c.png" "$TMP/c1.png"
check "the same command draws the same bytes" bash -c "'$CNNVIZ' plot history '$TMP/log.csv' -o '$TMP/c.png' --title T --quiet && cmp -s '$TMP/c.png' '$TMP/c1.png'"
# a history without validation data draws one curve per panel
printf 'epoch,loss\n0,0.5\n1,0.3\n' > "$TMP/loss.csv"
check "a loss-only CSV" "$CNNVIZ" plot history "$TMP/loss.csv" -o "$TMP/l.svg" --quiet
# bad files: one line naming the file, no figure
printf 'epoch,loss\n0,abc\n' > "$TMP/bad.csv"
expect_error 1 "^cnnviz: $TMP/bad.csv: not a CSVLogger file \(line 2" "$CNNVIZ" plot history "$TMP/bad.csv" -o "$TMP/bad.png"
printf 'epoch,loss\n0,0.5,7\n' > "$TMP/wide.csv"
expect_error 1 "^cnnviz: $TMP/wide.csv: not a CSVLogger file" "$CNNVIZ" plot history "$TMP/wide.csv" -o "$TMP/bad.png"
printf '{"lr": [0.001]}' > "$TMP/lr.json"
expect_error 1 "^cnnviz: $TMP/lr.json: the training history has no loss or accuracy" "$CNNVIZ" plot history "$TMP/lr.json" -o "$TMP/bad.png"
check "no figure left by the bad files" test ! -e "$TMP/bad.png"
# cnnviz train records that its val_* curves are the test set (plot labels them 'test')
if [ -n "$SHARED" ] && [ -e "$SHARED/data/mnist/train-images-idx3-ubyte.gz" ] && /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  "$CNNVIZ" train -o "$TMP/m.h5" --epochs 1 --limit 300 --quiet >/dev/null 2>&1
  check "train records cnnviz_validation=test" test "$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['cnnviz_validation'])" "$TMP/m.h5")" = test
  "$CNNVIZ" train -o "$TMP/s.h5" --epochs 1 --limit 300 --val-split 0.2 --quiet >/dev/null 2>&1
  check "--val-split records split" test "$(/usr/bin/python3 -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['cnnviz_validation'])" "$TMP/s.h5")" = split
fi
finish
