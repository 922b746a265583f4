#!/usr/bin/env bash
# cnnviz filters refuses bad requests with one line, exit 2 for usage (1 for a
# runtime problem such as an unknown layer or a missing file), and writes no
# file at all.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
# In-C32-P-C64-C64-P-F-D100-D10: 0 conv2d_5, 3 conv2d_7, 5 flatten_5, 6 dense_10
M=$SHARED/data/keras/tfk2_15_cnn.h5
O=$TMP/out
mkdir -p "$O"
run() { "$CNNVIZ" filters "$M" -o "$O/f.png" --dump "$O/f.h5" --snapshots 5 --steps 5 "$@"; }
no_files() { # nothing may be left behind, not even a temporary
  if [ -n "$(ls -A "$O")" ]; then fail "$1 left files: $(ls -A "$O")"; rm -f "$O"/*; else pass; fi
}
expect_error 2 "^cnnviz: filters: layer 'flatten_5' \(Flatten\) has no maps of its own" run --layer 5
no_files "Flatten"
expect_error 2 "^cnnviz: filters: layer 'dense_10' \(Dense\) has no \(y, x\) positions for a neuron" run --layer 6 --neuron 1,1
no_files "--neuron on Dense"
expect_error 2 "^cnnviz: filters: neuron \(26, 0\) is outside layer 'conv2d_5' output \(26, 26, 32\)" run --layer 0 --neuron 26,0
no_files "neuron outside"
expect_error 2 "^cnnviz: filters: --maps: map 64 is out of range: the layer has maps 0 to 63" run --layer 3 --maps 0-64
no_files "maps out of range"
expect_error 2 "^cnnviz: filters: --maps: 'x' is not a list like 0-7,12" run --layer 3 --maps x
expect_error 2 "^cnnviz: filters: --maps: '3-1' is not a list" run --layer 3 --maps 3-1
expect_error 2 "^cnnviz: filters: --steps: '0' is not a whole number from 1" run --layer 3 --steps 0
no_files "zero steps"
expect_error 2 "^cnnviz: filters: --layer is required" run
expect_error 2 "^cnnviz: filters: --neuron: 'a,b' is not Y,X" run --layer 0 --neuron a,b
expect_error 2 "^cnnviz: filters: --grad-norm: 'max' is not rms, l2 or std" run --layer 0 --grad-norm max
expect_error 2 "^cnnviz: filters: --restarts" run --layer 0 --restarts 0
expect_error 2 "^cnnviz: filters: --dump: '.*' does not end in .h5" "$CNNVIZ" filters "$M" --layer 0 --dump "$O/f.npy"
expect_error 1 "unknown output format" "$CNNVIZ" filters "$M" --layer 0 -o "$O/f.jpg"
no_files "usage errors"
expect_error 1 "^cnnviz: .*no layer 'conv9'" run --layer conv9
expect_error 1 "^cnnviz: $O/none.png: " run --layer 0 --init "$O/none.png"
no_files "runtime errors"
# the figure cannot be written (a folder is in the way): no dump left either
mkdir -p "$O/f.png"
expect_error 1 "^cnnviz: " run --layer 0 --maps 0-1
[ -e "$O/f.h5" ] && fail "a failed figure left the dump behind" || pass
rmdir "$O/f.png"
finish
