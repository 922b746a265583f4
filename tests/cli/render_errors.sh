#!/usr/bin/env bash
# Bad input to the figure commands: one line "cnnviz: FILE: problem", exit 1
# (2 for usage errors), and no file left behind, partial or temporary.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
need_shared data/mnist/t10k-images-idx3-ubyte.gz
M=$SHARED/data/keras/tfk2_15_cnn.h5
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0
cd "$TMP" || exit 1
mkdir work && cd work || exit 1

no_files() { # what: the working folder must still be empty
  if [ -z "$(ls -A)" ]; then pass; else fail "$1 left files: $(ls -A)"; rm -rf ./* ./.[!.]*; fi
}

# unknown layer: lists the valid ones
expect_error 1 "^cnnviz: $M: no layer 'conv9'; the layers are 0 conv2d_5, 1 max_pooling2d_5, 2 conv2d_6, .*7 dense_11\$" \
  "$CNNVIZ" activations "$M" "$X" --layer conv9
expect_error 1 "^cnnviz: $M: no layer '12'" "$CNNVIZ" kernels "$M" --layer 12
expect_error 1 "^cnnviz: $M: layer 'max_pooling2d_5' \\(MaxPooling2D\\) has no kernel" "$CNNVIZ" kernels "$M" --layer 1
no_files "unknown layers"

# output names: unknown extension, missing folder, a folder, an unwritable place
expect_error 1 "^cnnviz: fig.jpg: unknown output format '.jpg' \\(use .png, .svg or .pdf\\)\$" \
  "$CNNVIZ" activations "$M" "$X" -o fig.jpg
expect_error 1 "^cnnviz: figure: no output format in the name" "$CNNVIZ" kernels "$M" -o figure
expect_error 1 "^cnnviz: nowhere/fig.png: .*No such file or directory" "$CNNVIZ" activations "$M" "$X" -o nowhere/fig.png
mkdir dir.png
expect_error 1 "^cnnviz: dir.png: .*(directory|Directory)" "$CNNVIZ" kernels "$M" -o dir.png
rmdir dir.png
if [ "$(id -u)" != 0 ]; then
  mkdir ro && chmod 555 ro
  expect_error 1 "^cnnviz: ro/fig.pdf: .*Permission denied" "$CNNVIZ" activations "$M" "$X" -o ro/fig.pdf
  [ -z "$(ls -A ro)" ] && pass || fail "files left in a read-only folder: $(ls -A ro)"
  chmod 755 ro && rmdir ro
fi
no_files "bad output names"

# usage errors (exit 2)
expect_error 2 "--norm: 'channel' is not layer, map, global or fixed:LO:HI" "$CNNVIZ" activations "$M" "$X" --norm channel
expect_error 2 "--norm: 'fixed:3:1' needs LO below HI" "$CNNVIZ" activations "$M" "$X" --norm fixed:3:1
expect_error 2 "--cmap: 'jet' is not gray, viridis, magma or RdBu" "$CNNVIZ" activations "$M" "$X" --cmap jet
expect_error 2 "--pixel: '0' is not a whole number from 1 to 64" "$CNNVIZ" activations "$M" "$X" --pixel 0
expect_error 2 "no IMAGE given" "$CNNVIZ" activations "$M"
expect_error 2 "say what to plot: history" "$CNNVIZ" plot
expect_error 2 "'loss' is not something to plot" "$CNNVIZ" plot loss "$M"
expect_error 2 "no FILE given" "$CNNVIZ" checksum
no_files "usage errors"

# a model that was not trained by cnnviz has no history
expect_error 1 "^cnnviz: $M: no training history in this model \\(it was not trained by cnnviz train; plot a Keras History JSON or CSVLogger file instead\\)\$" \
  "$CNNVIZ" plot history "$M"
# checksum of things that are not images
printf 'not a png' > notpng.png
expect_error 1 "^cnnviz: notpng.png: " "$CNNVIZ" checksum notpng.png
expect_error 1 "^cnnviz: missing.png: " "$CNNVIZ" checksum missing.png
rm -f notpng.png
no_files "failed figures"

# without DejaVu Sans the figures would differ from machine to machine: refuse
printf '<?xml version="1.0"?>\n<fontconfig><dir>%s/nofonts</dir><cachedir>%s/fccache</cachedir></fontconfig>\n' \
  "$TMP" "$TMP" > "$TMP/fonts.conf"
mkdir -p "$TMP/nofonts"
expect_error 1 "^cnnviz: (no usable font|font 'DejaVu Sans' not found).*install fonts-dejavu-core" \
  env FONTCONFIG_FILE="$TMP/fonts.conf" "$CNNVIZ" kernels "$M" -o fig.png
no_files "a missing font"

# a dump into a missing parent folder fails before the figure is written
expect_error 1 "^cnnviz: nowhere/d.h5: " "$CNNVIZ" activations "$M" "$X" --dump nowhere/d.h5 -o fig.png
[ -e fig.png ] && fail "a figure was written although the dump failed" || pass
finish
