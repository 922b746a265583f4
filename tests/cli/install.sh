#!/usr/bin/env bash
# cmake --install into a scratch prefix, then use the installed files as a user
# would: build samples/classify.c with pkg-config and a CMake project with
# find_package(cnnviz), run the installed cnnviz from elsewhere with its own
# model, read every man page with man -l, and complete with the bash completion.
. "$(dirname "$0")/lib.bash"
BUILD=$(dirname "$CNNVIZ")
SRC=$CNNVIZ_SOURCE_DIR
P=$TMP/prefix
for tool in cmake pkg-config cc readelf nm man; do
  if ! command -v "$tool" >/dev/null; then fail "$tool is not installed (scripts/install-deps.sh installs it)"; fi
done
[ "$FAILS" = 0 ] || finish
if ! cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1; then
  cat "$TMP/install.log"
  fail "cmake --install"
  finish
fi
pc=$(find "$P" -name cnnviz.pc)
LIBDIR=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
# An ASan build's library needs its runtime in the program too.
SAN_FLAGS=""
if grep -q '^CNNVIZ_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then SAN_FLAGS="-fsanitize=address,undefined"; fi

# --- the files, the SONAME, the exported symbols ---------------------------------
for f in bin/cnnviz include/cnnviz/model.h include/cnnviz/error.h share/cnnviz/model.h5 \
         share/cnnviz/digits/digit-7.png share/man/man1/cnnviz.1.gz share/bash-completion/completions/cnnviz; do
  check "installed $f" test -e "$P/$f"
done
check "static library installed" test -e "$LIBDIR/libcnnviz.a"
soname=$(readelf -d "$LIBDIR/libcnnviz.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "SONAME libcnnviz.so.N (got '$soname')" bash -c '[[ $0 =~ ^libcnnviz\.so\.[0-9]+$ ]]' "$soname"
check "$soname installed beside the link" test -e "$LIBDIR/$soname"
nm -D --defined-only "$LIBDIR/libcnnviz.so" | awk '{print $3}' | sed 's/@.*//' > "$TMP/exports"
check "the .so exports cnnviz_model_load" grep -qx cnnviz_model_load "$TMP/exports"
# an engine function that no public header declares
check "the .so keeps cnnviz_gemm private" bash -c '! grep -qx cnnviz_gemm "$0"' "$TMP/exports"

# --- C with pkg-config ---------------------------------------------------------------
# shellcheck disable=SC2046
if cc -Wall -Werror $SAN_FLAGS "$SRC/samples/classify.c" -o "$TMP/classify" $(pkg-config --cflags --libs cnnviz) \
    2>"$TMP/cc.log"; then
  pass
  check "classify links libcnnviz.so" bash -c 'readelf -d "$0" | grep -q "NEEDED.*libcnnviz\.so"' "$TMP/classify"
  out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/classify" "$P/share/cnnviz/model.h5" "$P/share/cnnviz/digits/digit-7.png")
  check "pkg-config build classifies digit-7 (got '$out')" grep -q "digit-7.png: 7 " <<<"$out"
else
  fail "cc samples/classify.c \$(pkg-config --cflags --libs cnnviz): $(cat "$TMP/cc.log")"
fi
# Static linking needs Requires.private and Libs.private to be complete.
static_libs=$(pkg-config --static --libs cnnviz)
check "pkg-config --static names OpenMP, libm, HDF5 (got '$static_libs')" \
  bash -c '[[ " $0 " == *" -fopenmp "* && " $0 " == *" -lm "* && " $0 " == *hdf5* ]]' "$static_libs"
# shellcheck disable=SC2046
if cc $SAN_FLAGS "$SRC/samples/classify.c" -o "$TMP/classify_static" $(pkg-config --cflags cnnviz) \
    "$LIBDIR/libcnnviz.a" ${static_libs/-lcnnviz/} 2>"$TMP/cc.log"; then
  out=$("$TMP/classify_static" "$P/share/cnnviz/model.h5" "$P/share/cnnviz/digits/digit-1.png")
  check "libcnnviz.a with pkg-config --static classifies digit-1 (got '$out')" grep -q "digit-1.png: 1 " <<<"$out"
else
  fail "cc samples/classify.c libcnnviz.a \$(pkg-config --static --libs cnnviz): $(cat "$TMP/cc.log")"
fi

# --- CMake with find_package ------------------------------------------------------------
mkdir -p "$TMP/user"
cp "$SRC/samples/classify.c" "$TMP/user/"
cat > "$TMP/user/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(use_cnnviz LANGUAGES C)
find_package(cnnviz 0.1 REQUIRED)
add_executable(classify_shared classify.c)
target_link_libraries(classify_shared PRIVATE cnnviz::cnnviz)
add_executable(classify_static classify.c)
target_link_libraries(classify_static PRIVATE cnnviz::cnnviz_static)
EOF
if cmake -S "$TMP/user" -B "$TMP/user/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$SAN_FLAGS" \
     >"$TMP/user.log" 2>&1 && cmake --build "$TMP/user/build" >>"$TMP/user.log" 2>&1; then
  pass
  for kind in shared static; do
    out=$(LD_LIBRARY_PATH=$LIBDIR "$TMP/user/build/classify_$kind" "$P/share/cnnviz/model.h5" \
          "$P/share/cnnviz/digits/digit-4.png")
    check "find_package build ($kind) classifies digit-4 (got '$out')" grep -q "digit-4.png: 4 " <<<"$out"
  done
  check "cnnviz::cnnviz_static does not need libcnnviz.so" \
    bash -c '! readelf -d "$0" | grep -q "NEEDED.*libcnnviz"' "$TMP/user/build/classify_static"
else
  fail "find_package(cnnviz) project: $(cat "$TMP/user.log")"
fi

# --- the installed command finds its own model ------------------------------------------
mkdir -p "$TMP/elsewhere"
out=$(cd "$TMP/elsewhere" && env -u CNNVIZ_MODEL "$P/bin/cnnviz" predict --quiet "$P/share/cnnviz/digits/digit-3.png")
check "installed cnnviz predict with no model (got '$out')" grep -q "digit-3.png: 3 " <<<"$out"
# Moved elsewhere, it reads the model beside itself: a broken copy there is the
# file it names (not the source tree's samples/model.h5).
cp -a "$P" "$TMP/moved"
: > "$TMP/moved/share/cnnviz/model.h5"
cd "$TMP/elsewhere" || exit 1
expect_error 1 "^cnnviz: $TMP/moved/share/cnnviz/model.h5: " env -u CNNVIZ_MODEL "$TMP/moved/bin/cnnviz" summary
# $CNNVIZ_MODEL wins over the installed model
expect_error 1 "^cnnviz: $TMP/none.h5: " env CNNVIZ_MODEL="$TMP/none.h5" "$P/bin/cnnviz" summary
cd - >/dev/null || exit 1

# --- man pages: one per command, each rendering, each naming every option -----------------
mapfile -t commands < <("$P/bin/cnnviz" --help-complete | cut -f1)
check "cnnviz lists its commands" test "${#commands[@]}" -ge 5
check "cnnviz.1 renders" bash -c 'MANWIDTH=1000 man -l "$0" 2>/dev/null | grep -q "^NAME"' "$P/share/man/man1/cnnviz.1.gz"
pages=$(find "$P/share/man/man1" -name '*.1.gz' | wc -l)
check "a man page per command and cnnviz.1 ($pages pages)" test "$pages" = $((${#commands[@]} + 1))
for cmd in "${commands[@]}"; do
  page=$P/share/man/man1/cnnviz-$cmd.1.gz
  if ! MANWIDTH=1000 LC_ALL=C man -l "$page" >"$TMP/man.txt" 2>"$TMP/man.err"; then
    fail "man -l $page: $(cat "$TMP/man.err")"
    continue
  fi
  check "cnnviz-$cmd(1) has its NAME line" grep -q "cnnviz-$cmd - " "$TMP/man.txt"
  missing=""
  for opt in $("$P/bin/cnnviz" "$cmd" --help | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
    grep -qF -- "$opt" "$TMP/man.txt" || missing+=" $opt"
  done
  check "cnnviz-$cmd(1) names every option of --help (missing:$missing)" test -z "$missing"
done

# --- bash completion ---------------------------------------------------------------------------
complete_words() { # complete_words WORD...: what the completion offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cnnviz; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$P/share/bash-completion/completions/cnnviz" "$@"
}
check "completes a command name" test "$(complete_words cnnviz pred)" = predict
check "completes an option" test "$(complete_words cnnviz filters --constant-s)" = --constant-step
check "completes a short option's long form" grep -qx -- --layer <<<"$(complete_words cnnviz activations --la)"
touch "$TMP/elsewhere/figure-out.png"
check "completes a file after -o" test "$(complete_words cnnviz kernels -o "$TMP/elsewhere/figure-o")" = \
  "$TMP/elsewhere/figure-out.png"
missing=""
for opt in $("$P/bin/cnnviz" train --help | grep -oE -- '^ +(-[a-z], )?--[a-z0-9][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+'); do
  grep -qx -- "$opt" <<<"$(complete_words cnnviz train --)" || missing+=" $opt"
done
check "bash completes every option of train --help (missing:$missing)" test -z "$missing"
if command -v zsh >/dev/null; then
  check "zsh completion parses" zsh -n "$(find "$P/share/zsh" -name _cnnviz)"
fi
finish
