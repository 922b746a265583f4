#!/usr/bin/env bash
# Golden pixel checksums of real figures, the way users' regression tests
# check them: `cnnviz checksum` of each figure against tests/golden/cli.sha256,
# with the reference PNGs beside it to look at when one differs.
# CNNVIZ_UPDATE_GOLDEN=1 rewrites the list and the PNGs (look at them first).
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
need_shared data/mnist/t10k-images-idx3-ubyte.gz
M=$SHARED/data/keras/tfk2_15_cnn.h5
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0
GOLDEN=$CNNVIZ_SOURCE_DIR/tests/golden
LIST=$GOLDEN/cli.sha256

# name | command line after "cnnviz" (the figure goes to $TMP/name.png)
figures() {
  cat <<LIST
activations_default|activations $M $X
activations_viridis|activations $M $X --layer 0 --layer conv2d_6 --cmap viridis
activations_magma_global|activations $M $X --layer max_pooling2d_5 --layer 4 --cmap magma --norm global
activations_rdbu_fixed|activations $M $X --layer 3 --cmap RdBu --norm fixed:-2:2
activations_gray_map|activations $M $X --layer conv2d_5 --norm map --pixel 2
kernels_conv1|kernels $M --layer 0
kernels_conv2|kernels $M --layer conv2d_6
kernels_conv2_matrix|kernels $M --layer conv2d_6 --top 0
kernels_dense_folded|kernels $M --layer dense_10 --top 3
LIST
}

# a model with a training history: the same model plus the attribute
# cnnviz train writes (needs python3-h5py)
HIST=""
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  HIST=$TMP/with_history.h5
  cp "$M" "$HIST"
  /usr/bin/python3 - "$HIST" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.attrs["cnnviz_history"] = ('{"loss":[0.2741,0.0912,0.0645,0.0513,0.0437,0.0371],'
        '"accuracy":[0.9161,0.9721,0.9801,0.9839,0.9862,0.9883],'
        '"val_loss":[0.0861,0.0577,0.0489,0.0421,0.0436,0.0398],'
        '"val_accuracy":[0.9733,0.9817,0.9842,0.9861,0.9857,0.9872]}')
PY
else
  echo "note: history figure skipped (python3-h5py not installed)"
fi

run_figure() { # name args...
  local name=$1; shift
  if ! "$CNNVIZ" "$@" -o "$TMP/$name.png" --quiet; then fail "cnnviz $* failed"; return 1; fi
  "$CNNVIZ" checksum "$TMP/$name.png" > "$TMP/$name.sum" || { fail "checksum of $name failed"; return 1; }
}

names=()
while IFS='|' read -r name args; do
  # shellcheck disable=SC2086
  run_figure "$name" $args && names+=("$name")
done < <(figures)
if [ -n "$HIST" ]; then run_figure history plot history "$HIST" && names+=(history); fi

if [ "${CNNVIZ_UPDATE_GOLDEN:-}" = 1 ]; then
  for name in "${names[@]}"; do
    cp "$TMP/$name.png" "$GOLDEN/$name.png"
    grep -v "  $name.png\$" "$LIST" 2>/dev/null > "$TMP/list" || true
    read -r hash size _ < "$TMP/$name.sum"
    printf '%s  %s  %s.png\n' "$hash" "$size" "$name" >> "$TMP/list"
    cp "$TMP/list" "$LIST"
  done
  if /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
    for name in "${names[@]}"; do /usr/bin/python3 "$GOLDEN/optimize.py" "$GOLDEN/$name.png" > /dev/null; done
  fi
  echo "updated $LIST"
fi

# Activation values come from float arithmetic whose last bit depends on the
# BLAS kernels of the machine (and on -O0 against -O2); a value sitting on a
# colour-level boundary then lands one level off. Where the checksum differs
# for an activations figure, it still passes when the figures are the same
# size and at most 0.05% of the pixels differ, each by at most one colour
# level of the colormap (needs numpy). Kernels and history use the file's
# numbers as they are and must match exactly.
near_match() { # golden.png new.png cmap
  /usr/bin/python3 - "$@" <<'PY'
import sys
import numpy as np
from matplotlib import colormaps, image
a = (image.imread(sys.argv[1])[..., :3] * 255 + 0.5).astype(int)
b = (image.imread(sys.argv[2])[..., :3] * 255 + 0.5).astype(int)
if a.shape != b.shape:
    sys.exit("sizes differ")
diff = np.abs(a - b).max(axis=2)
n = int((diff > 0).sum())
lut = (colormaps[sys.argv[3]](np.arange(256))[:, :3] * 255 + 0.5).astype(int)
step = int(np.abs(np.diff(lut, axis=0)).max())
print("%d of %d pixels differ, by at most %d (one %s level is at most %d)" % (n, diff.size, diff.max(), sys.argv[3], step))
sys.exit(0 if n <= diff.size * 0.0005 and diff.max() <= step else 1)
PY
}

for name in "${names[@]}"; do
  read -r hash size _ < "$TMP/$name.sum"
  want=$(grep "  $name.png\$" "$LIST" 2>/dev/null | head -1)
  if [ -z "$want" ]; then fail "$name: no golden in $LIST (CNNVIZ_UPDATE_GOLDEN=1 makes one)"; continue; fi
  cmap=gray
  case "$name" in *viridis*) cmap=viridis ;; *magma*) cmap=magma ;; *rdbu*) cmap=RdBu ;; esac
  if [ "$want" = "$hash  $size  $name.png" ]; then pass
  elif [ "${name#activations}" != "$name" ] && /usr/bin/python3 -c 'import numpy, matplotlib' 2>/dev/null &&
       note=$(near_match "$GOLDEN/$name.png" "$TMP/$name.png" "$cmap"); then
    echo "note: $name: checksum differs, but only by rounding: $note"
    pass
  else
    cp "$TMP/$name.png" "${TMPDIR:-/tmp}/cnnviz-golden-$name.png"
    fail "$name: $hash $size, golden: $want; compare ${TMPDIR:-/tmp}/cnnviz-golden-$name.png with $GOLDEN/$name.png"
  fi
  # the stored reference itself still decodes to the golden pixels
  if [ -f "$GOLDEN/$name.png" ]; then
    ref=$("$CNNVIZ" checksum "$GOLDEN/$name.png" | cut -d' ' -f1-4)
    [ "$ref" = "${want% *}" ] && pass || fail "$GOLDEN/$name.png does not match its own checksum"
  fi
done
finish
