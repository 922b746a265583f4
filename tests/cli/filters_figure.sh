#!/usr/bin/env bash
# The filters figure for an article: --sort, --top, weak maps, class labels,
# and a titled snapshots figure.
. "$(dirname "$0")/lib.bash"
sum() { "$CNNVIZ" checksum "$1" | cut -d' ' -f1; }
size() { "$CNNVIZ" checksum "$1" | awk '{print $2}'; }
F=(--layer conv2d_1 --steps 30 --quiet)
"$CNNVIZ" filters "${F[@]}" -o "$TMP/map.png"
"$CNNVIZ" filters "${F[@]}" -o "$TMP/act.png" --sort activation
"$CNNVIZ" filters "${F[@]}" -o "$TMP/top.png" --top 8
"$CNNVIZ" filters "${F[@]}" -o "$TMP/topsort.png" --top 8 --sort activation
check "--sort activation reorders the tiles" test "$(sum "$TMP/map.png")" != "$(sum "$TMP/act.png")"
check "--sort keeps the height" test "$(size "$TMP/map.png" | cut -dx -f2)" = "$(size "$TMP/act.png" | cut -dx -f2)"
check "--top 8 draws fewer tiles" test "$(size "$TMP/top.png")" != "$(size "$TMP/map.png")"
check "--top 8 in map order and strongest first differ" test "$(sum "$TMP/top.png")" != "$(sum "$TMP/topsort.png")"
out=$("$CNNVIZ" filters "${F[@]}" -o "$TMP/j.png" --top 8 --json)
check "--json keeps every map with --top" test "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["maps"]))' <<<"$out")" = 64
# a weak map is drawn differently from the same map unmarked
if [ -n "$SHARED" ] && [ -e "$SHARED/data/keras/tfk2_5x5_same_dropout.h5" ]; then
  M=$SHARED/data/keras/tfk2_5x5_same_dropout.h5
  "$CNNVIZ" filters "$M" --layer conv2d_1 --maps 5 --steps 100 -o "$TMP/w1.png" --quiet --title t
  "$CNNVIZ" filters "$M" --layer conv2d_1 --maps 1,5 --steps 100 -o "$TMP/w2.png" --quiet --title t
  "$CNNVIZ" filters "$M" --layer conv2d_1 --maps 1,5 --steps 100 -o "$TMP/w3.png" --quiet --title t --weak 0
  check "map 5 (1.5% of map 1) is marked weak beside map 1" test "$(sum "$TMP/w2.png")" != "$(sum "$TMP/w3.png")"
fi
# output units are classes; names come from a file with one per line
printf 'zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n' > "$TMP/names.txt"
"$CNNVIZ" filters --layer dense_1 --steps 20 -o "$TMP/c.png" --quiet
"$CNNVIZ" filters --layer dense_1 --steps 20 -o "$TMP/n.png" --quiet --class-names "$TMP/names.txt"
check "--class-names labels the classes" test "$(sum "$TMP/c.png")" != "$(sum "$TMP/n.png")"
printf 'a\nb\n' > "$TMP/two.txt"
expect_error 1 "^cnnviz: $TMP/two.txt: 2 class names for the model's 10 classes" "$CNNVIZ" filters --layer dense_1 --steps 2 -o "$TMP/x.png" --class-names "$TMP/two.txt"
check "no figure after the bad names" test ! -e "$TMP/x.png"
expect_error 2 "^cnnviz: filters: --sort: 'size' is not map or activation" "$CNNVIZ" filters --layer 0 --sort size
expect_error 2 "^cnnviz: filters: --preset: 'nice' is not smooth" "$CNNVIZ" filters --layer 0 --preset nice
"$CNNVIZ" filters "${F[@]}" -o "$TMP/smooth.png" --preset smooth
check "--preset smooth changes the patterns" test "$(sum "$TMP/smooth.png")" != "$(sum "$TMP/map.png")"
plain=$("$CNNVIZ" filters "${F[@]}" -o "$TMP/p.png" --json)
undone=$("$CNNVIZ" filters "${F[@]}" -o "$TMP/u.png" --json --preset smooth --jitter 0 --blur-every 0 --tv 0 --restarts 1 --init uniform)
check "flags after --preset override it: the plain ascent's activations" test "$plain" = "$undone"
# the snapshots figure: rows of maps, columns of steps, drawn through the figure code (title, labels)
"$CNNVIZ" filters --layer dense_1 --steps 40 --snapshots 10 -o "$TMP/s.png" --quiet
IFS=x read -r w h <<<"$(size "$TMP/s-snapshots.png")"
check "snapshots: 10 rows of 5 columns is taller than wide (${w}x$h)" test "$h" -gt "$w"
finish
