#!/usr/bin/env bash
# The same command gives byte-identical PNG, SVG and PDF files, run after run
# and for --threads 1 and --threads 2; PDFs carry no creation date and PNGs
# carry their provenance.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
need_shared data/mnist/t10k-images-idx3-ubyte.gz
M=$SHARED/data/keras/tfk2_15_cnn.h5
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@3
cd "$TMP" || exit 1

same_bytes() { # what CMD...: run CMD twice (the figure is out.EXT), compare
  local what=$1; shift
  local out=${*: -1}
  "$@" || { fail "$what: first run failed"; return; }
  mv "$out" "first.${out##*.}"
  "$@" || { fail "$what: second run failed"; return; }
  if cmp -s "first.${out##*.}" "$out"; then pass; else fail "$what: two runs differ"; fi
}

for ext in png svg pdf; do
  same_bytes "activations .$ext" "$CNNVIZ" activations "$M" "$X" --quiet --cmap viridis -o "fig.$ext"
  same_bytes "kernels .$ext" "$CNNVIZ" kernels "$M" --layer 2 --quiet -o "k.$ext"
  # --threads changes how the engine runs, not the figure
  "$CNNVIZ" activations "$M" "$X" --quiet --threads 1 -o "t.$ext" && mv "t.$ext" "t1.$ext"
  "$CNNVIZ" activations "$M" "$X" --quiet --threads 2 -o "t.$ext" && mv "t.$ext" "t2.$ext"
  if cmp -s "t1.$ext" "t2.$ext"; then pass; else fail ".$ext differs between --threads 1 and 2"; fi
done

# no dates, and the provenance is there
if grep -aq CreationDate fig.pdf; then fail "the PDF has a creation date"; else pass; fi
if grep -aq ModDate fig.pdf; then fail "the PDF has a modification date"; else pass; fi
grep -aq "tIME" fig.png && fail "the PNG has a tIME chunk" || pass
grep -aq "Software.cnnviz " fig.png && pass || fail "the PNG has no Software chunk"
sha=$(sha256sum "$M" | cut -d' ' -f1)
grep -aq "Model SHA-256.$sha" fig.png && pass || fail "the PNG does not carry the model's SHA-256"
grep -aq "Command.cnnviz activations $M $X --cmap viridis -o fig.png" fig.png && pass ||
  fail "the PNG does not carry the command line"
grep -aq "<cnnviz:model-sha256 xmlns:cnnviz=\"urn:cnnviz\">$sha</cnnviz:model-sha256>" fig.svg && pass ||
  fail "the SVG does not carry the model's SHA-256"
# the figure went where the command said, and nowhere else
ls | grep -q 'tmp-' && fail "temporary files left: $(ls)" || pass
finish
