#!/usr/bin/env bash
# A model file is untrusted input (issue 21): every hostile file in
# shared/data/keras/hostile and every one tests/tools/make_hostile.py makes
# is refused with exit 1, one stderr line "cnnviz: FILE: what was refused",
# no output, no signal, in under 10 s and 600 MB; no HDF5 plugin is loaded
# even when HDF5_PLUGIN_PATH names a folder with one; --arch strings whose
# sizes overflow or exceed the weight budget are one-line errors.
# The two files that crash libhdf5 itself (hdf5_vlen_heap_overflow.h5,
# hdf5_global_heap_loop.h5) are the child-process loader's to contain.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/hostile/MANIFEST.md
H=$SHARED/data/keras/hostile
PY=/usr/bin/python3
have_h5py=0
[ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null && have_h5py=1

# Memory: /usr/bin/time's max RSS where it is installed, else an address
# space limit (not under ASan, whose shadow memory reserves terabytes).
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time
asan=0
ldd "$CNNVIZ" 2>/dev/null | grep -q libasan && asan=1
[ -z "$TIME" ] && [ "$asan" = 1 ] && echo "note: memory not measured (no /usr/bin/time, ASan build)"

# refused FILE PATTERN: `cnnviz summary FILE` exits 1 with one stderr line
# "cnnviz: FILE: ..." matching PATTERN, prints nothing, within the limits
refused() {
  local f=$1 pattern=$2 rc start end kb
  start=$(date +%s%N)
  if [ -n "$TIME" ]; then
    timeout 10 "$TIME" -o "$TMP/rss" -f %M "$CNNVIZ" summary "$f" >"$TMP/out" 2>"$TMP/err"; rc=$?
  elif [ "$asan" = 0 ]; then
    (ulimit -v 614400; exec timeout 10 "$CNNVIZ" summary "$f") >"$TMP/out" 2>"$TMP/err"; rc=$?
  else
    timeout 10 "$CNNVIZ" summary "$f" >"$TMP/out" 2>"$TMP/err"; rc=$?
  fi
  end=$(date +%s%N)
  # /usr/bin/time adds "Command exited with non-zero status N" to its own file, not to err
  local name=${f##*/} lines
  lines=$(wc -l <"$TMP/err")
  if [ "$rc" != 1 ]; then fail "$name: exit $rc, wanted 1 (stderr: $(cat "$TMP/err"))"; return; fi
  if [ "$lines" != 1 ]; then fail "$name: wanted one stderr line, got: $(cat "$TMP/err")"; return; fi
  if ! grep -q "^cnnviz: $f: " "$TMP/err"; then fail "$name: the error does not name the file: $(cat "$TMP/err")"; return; fi
  if ! grep -Eq -- "$pattern" "$TMP/err"; then fail "$name: '$(cat "$TMP/err")' does not match '$pattern'"; return; fi
  if [ -s "$TMP/out" ]; then fail "$name: printed on stdout"; return; fi
  if [ $(( (end - start) / 1000000 )) -ge 10000 ]; then fail "$name: took $(( (end - start) / 1000000 )) ms"; return; fi
  if [ -n "$TIME" ]; then
    kb=$(tail -1 "$TMP/rss")
    if [ "$kb" -gt 614400 ]; then fail "$name: used $kb KB"; return; fi
  fi
  pass
  echo "$name: $(cut -d: -f3- "$TMP/err" | sed 's/^ //') ($(( (end - start) / 1000000 )) ms${kb:+, $kb KB})"
}

# --- the shared examples -----------------------------------------------------------
for f in "$H"/*; do
  case ${f##*/} in
  MANIFEST.md | hdf5_vlen_heap_overflow.h5 | hdf5_global_heap_loop.h5) continue ;;
  a3_ext_densekernel_etc_passwd.h5) refused "$f" "weight 'dense/kernel:0' has HDF5 external storage in '/etc/passwd', refused" ;;
  b2_extlink_weight.h5) refused "$f" "weight 'dense_1/bias:0' is an external link into another file, refused" ;;
  c3_vds_etc_passwd.h5) refused "$f" "weight 'dense_1/bias:0' is a virtual dataset .*refused" ;;
  donor.h5) refused "$f" "HDF5 file without a Keras model" ;; # the external link's target, not a model
  f6_1000_unnamed_dropouts.keras) refused "$f" "the model config has 1004 layers, over the limit of 512" ;;
  g4_duplicate_weights_member.keras) refused "$f" "holds model.weights.h5 more than once, refused" ;;
  h1_lzf_filter_32000.h5) refused "$f" "weight 'dense_1/bias:0' uses HDF5 filter 32000 \(LZF\), which Keras files do not use" ;;
  *) refused "$f" "." ;; # a new example: refused, whatever the words
  esac
done

# --- made here ---------------------------------------------------------------------
if [ "$have_h5py" = 1 ]; then
  if "$PY" "$CNNVIZ_SOURCE_DIR/tests/tools/make_hostile.py" "$CNNVIZ_SOURCE_DIR/samples/model.h5" "$TMP/made" 2>"$TMP/err"; then
    n=0
    while IFS=$'\t' read -r name pattern; do
      refused "$TMP/made/$name" "$pattern"
      n=$((n + 1))
    done <"$TMP/made/EXPECTED.tsv"
    check "make_hostile.py made its 17 files ($n)" test "$n" = 17
  else
    fail "make_hostile.py failed: $(cat "$TMP/err")"
  fi
else
  echo "note: the made files skipped ($PY with h5py and numpy is needed: apt-get install python3-h5py)"
fi

# --- nothing outside the file is touched ---------------------------------------------
# the targets of the links, external storage and virtual datasets above are
# never opened nor even looked up (strace, where it is installed)
if command -v strace >/dev/null; then
  for f in "$H"/a3_ext_densekernel_etc_passwd.h5 "$H"/b2_extlink_weight.h5 "$H"/c3_vds_etc_passwd.h5 \
           "$TMP"/made/extlink_group.h5 "$TMP"/made/ext_storage_relative.h5 "$TMP"/made/vds_missing_source.h5; do
    [ -e "$f" ] || continue
    (cd "${f%/*}" && strace -f -o "$TMP/trace" -e trace=open,openat,stat,lstat,newfstatat,statx,access \
       "$CNNVIZ" summary "$f" >/dev/null 2>&1)
    touched=$(grep -E '/etc/passwd"|[/"](donor\.h5|stolen\.bin|missing_source\.h5)"' "$TMP/trace")
    if [ -z "$touched" ]; then pass; else fail "${f##*/}: cnnviz touched another file: $touched"; fi
  done
else
  echo "note: strace is not installed: the files cnnviz touches are not checked"
fi

# --- no plugin is loaded -----------------------------------------------------------
# A library whose constructor leaves a marker, in the folder HDF5_PLUGIN_PATH
# names. As a control, h5py (the same libhdf5, plugins on) reading the made
# weight with filter 32015 shows that the marker appears when libhdf5 loads
# plugins (cnnviz at d76db29 made it too, reading that file); cnnviz must
# never make it, for that file or the shared LZF one.
mkdir -p "$TMP/plugins"
cat >"$TMP/plugin.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void loaded(void) {
    const char *m = getenv("CNNVIZ_PLUGIN_MARKER");
    FILE *f = m ? fopen(m, "w") : NULL;
    if (f) fclose(f);
}
int H5PLget_plugin_type(void) { return 0; }
const void *H5PLget_plugin_info(void) { return NULL; }
C
if ! cc -shared -fPIC -o "$TMP/plugins/libmarker_filter.so" "$TMP/plugin.c" 2>"$TMP/err"; then
  fail "cannot build the marker plugin: $(cat "$TMP/err")"
else
  export HDF5_PLUGIN_PATH=$TMP/plugins CNNVIZ_PLUGIN_MARKER=$TMP/marker
  plugin_files=("$H/h1_lzf_filter_32000.h5")
  if [ -e "$TMP/made/unknown_filter.h5" ]; then
    plugin_files+=("$TMP/made/unknown_filter.h5")
    "$PY" -c 'import sys, h5py
h5py.File(sys.argv[1], "r")["model_weights/dense/dense/bias:0"][...]' "$TMP/made/unknown_filter.h5" >/dev/null 2>&1
    check "control: libhdf5 with plugins on loads the marker library" test -e "$TMP/marker"
    rm -f "$TMP/marker"
  fi
  for f in "${plugin_files[@]}"; do
    refused "$f" "uses HDF5 filter"
    check "cnnviz loaded no plugin for ${f##*/} (marker absent)" test ! -e "$TMP/marker"
  done
  "$CNNVIZ" summary "$CNNVIZ_SOURCE_DIR/samples/model.h5" >/dev/null 2>&1
  check "nor while loading a good model" test ! -e "$TMP/marker"
  unset HDF5_PLUGIN_PATH CNNVIZ_PLUGIN_MARKER
fi

# --- --arch sizes and the weight budget ------------------------------------------------
expect_error 1 "^cnnviz: arch 'C1k46341x46341same-F-D10': .*conv2d with a 46341x46341 kernel .* is too large" \
  "$CNNVIZ" train --arch C1k46341x46341same-F-D10 -o "$TMP/x.h5"
expect_error 1 "^cnnviz: arch 'C37777-F-D96': .*dense with 96 units on 25537252 inputs is too large" \
  "$CNNVIZ" train --arch C37777-F-D96 -o "$TMP/x.h5"
expect_error 1 "^cnnviz: arch 'C3000-F-D96': 'D96' makes the model 194688096 weights, over the limit of 33554432" \
  "$CNNVIZ" train --arch C3000-F-D96 -o "$TMP/x.h5"
expect_error 1 "^cnnviz: arch 'C999999-P2-P2-P2-P2-F-D10': 'C999999' outputs 675999324 values a sample, over the limit of 33554432" \
  "$CNNVIZ" train --arch C999999-P2-P2-P2-P2-F-D10 -o "$TMP/x.h5"
expect_error 1 "^cnnviz: arch 'C8-F-D10': 'D10' makes the model 54170 weights, over the limit of 54169" \
  "$CNNVIZ" train --arch C8-F-D10 --max-params 54169 -o "$TMP/x.h5"
# the loading commands take it too
expect_error 1 "^cnnviz: .*model.h5: layer 'dense' \(Dense\) has 40390 weights, which would make 96134 in the model, over the limit of 60000" \
  "$CNNVIZ" summary "$CNNVIZ_SOURCE_DIR/samples/model.h5" --max-params 60000
check "--max-params 96844 loads the 96,844-weight model" "$CNNVIZ" summary "$CNNVIZ_SOURCE_DIR/samples/model.h5" --max-params 96844 --quiet
expect_error 2 "max-params: '0' is not a whole number" "$CNNVIZ" train --max-params 0 -o "$TMP/x.h5"
check "no model written" test ! -e "$TMP/x.h5"
finish
