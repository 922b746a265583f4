#!/usr/bin/env bash
# cnnviz checksum: SHA-256 over (be32 width, be32 height, RGBA8 pixels),
# the same for the same pixels whatever the PNG encoding; --json fields.
. "$(dirname "$0")/lib.bash"
cd "$TMP" || exit 1
# a 2x1 RGB PNG written by hand: red, blue (zlib stored block, filter 0)
/usr/bin/python3 - <<'PY' 2>/dev/null || true
import struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
raw = b"\x00" + bytes([255, 0, 0, 0, 0, 255])
for name, level in (("a.png", 0), ("b.png", 9)):
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"Comment\x00different metadata") if level else b""
    open(name, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
                           chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))
PY
if [ ! -s a.png ]; then echo "SKIP: no python3 to write the test PNGs"; exit 77; fi
# sha256 of 00000002 00000001 ff0000ff 0000ffff, computed independently
want=$(printf '\x00\x00\x00\x02\x00\x00\x00\x01\xff\x00\x00\xff\x00\x00\xff\xff' | sha256sum | cut -d' ' -f1)
out=$("$CNNVIZ" checksum a.png b.png)
check "exit 0" test $? = 0
check "text output" test "$out" = "$want  2x1  a.png
$want  2x1  b.png"
json=$("$CNNVIZ" checksum --json a.png)
check "json output" test "$json" = "[{\"file\":\"a.png\",\"sha256\":\"$want\",\"width\":2,\"height\":1}]"
"$CNNVIZ" checksum --help | grep -q "4-byte big-endian" && pass || fail "--help does not define the hash"
# one bad file among good ones: the good ones are still printed, exit 1
out=$("$CNNVIZ" checksum a.png missing.png 2>err.txt); rc=$?
check "exit 1 with a missing file" test $rc = 1
check "the good file is still printed" test "$out" = "$want  2x1  a.png"
check "one error line" test "$(wc -l < err.txt)" = 1
finish
