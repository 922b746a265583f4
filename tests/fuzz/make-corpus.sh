#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses, made from samples/ and the shared
# data (read there, written only under OUT, never into the repository).
# Usage: tests/fuzz/make-corpus.sh OUT BUILD_DIR
#   OUT/<harness>/ gets the seeds of each harness; BUILD_DIR's cnnviz trains
#   the tiny models whose files, configs and histories are seeds too, and
#   its fuzz_seed_attr takes the configs and histories out of the .h5 files.
# Shared data: $CNNVIZ_SHARED or ../shared; without it only samples/ and
# the literal seeds below are used (said on stderr).
set -euo pipefail
out=$1
cnnviz=$2/cnnviz
seed_attr=$2/fuzz_seed_attr
export ASAN_OPTIONS=detect_leaks=0 # libhdf5 keeps its caches to the end
repo=$(cd "$(dirname "$0")/../.." && pwd)
shared=${CNNVIZ_SHARED:-$repo/../shared}
data=$shared/data
for h in keras_h5 keras_zip keras_json arch image idx history; do mkdir -p "$out/$h"; done
have_data=1
if [ ! -d "$data" ]; then
    echo "make-corpus: no shared data at $data (set CNNVIZ_SHARED): seeds from samples/ only" >&2
    have_data=0
fi

# Files of at most MAX bytes: big models make every run slow and the
# mutations land mostly in weights.
max_bytes=1500000
copy_small() { # DEST FILE...
    local dest=$1 f
    shift
    for f in "$@"; do
        [ -f "$f" ] && [ "$(stat -c %s "$f")" -le $max_bytes ] && cp "$f" "$dest/"
    done
    return 0
}

# --- model files: the bundled model, the real ones, the refused ones, and
# tiny models cnnviz trains here (a few KB each) --------------------------
copy_small "$out/keras_h5" "$repo/samples/model.h5"
if [ $have_data = 1 ]; then
    copy_small "$out/keras_h5" "$data"/keras/*.h5 "$data"/keras/bad/*
    # the two that crash and hang libhdf5 at once are left out: every run
    # would spend its start on them (the fuzzer finds their kind anyway)
    for f in "$data"/keras/hostile/*.h5; do
        case $(basename "$f") in hdf5_global_heap_loop.h5 | hdf5_vlen_heap_overflow.h5) ;; *) copy_small "$out/keras_h5" "$f" ;; esac
    done
    copy_small "$out/keras_zip" "$data"/keras/*.keras "$data"/keras/hostile/*.keras
    if [ -d "$data/mnist" ]; then
        i=0
        for arch in C2k3-P2-F-D10 "C2k3x2s2same:tanh-A2-Dr0.25-F-D4l2=1e-3-D10" F-D10 C1k5-P3same-F-D2l1=0.5-D10; do
            "$cnnviz" train -o "$out/keras_h5/tiny$i.h5" --data "$data/mnist" --arch "$arch" --limit 32 --batch 16 \
                --epochs 2 --threads 1 --validation none --quiet >/dev/null 2>&1 ||
                echo "make-corpus: cnnviz train --arch $arch failed; seed left out" >&2
            i=$((i + 1))
        done
    fi
fi

# --- Keras JSON configs and histories, taken out of the model files ----------
python3 - "$out" <<'PY'
import glob, os, sys, zipfile
out = sys.argv[1]
for f in sorted(glob.glob(os.path.join(out, "keras_zip", "*"))):
    try:
        with zipfile.ZipFile(f) as z:
            cfg = z.read("config.json")
        open(os.path.join(out, "keras_json", os.path.basename(f) + ".json"), "wb").write(cfg)
    except Exception:
        pass  # a hostile one may not open as a zip
PY
for f in "$out"/keras_h5/*; do
    b=$(basename "$f")
    "$seed_attr" "$f" model_config >"$out/keras_json/$b.json" 2>/dev/null || rm -f "$out/keras_json/$b.json"
    "$seed_attr" "$f" cnnviz_history >"$out/history/$b.json" 2>/dev/null || rm -f "$out/history/$b.json"
done

# --- the --arch grammar: the examples of the help text and the tests ---------
i=0
for spec in C32k3-P2-C64k3-P2-C64k3-F-D70-D10 C64k3-P2-C64k3-P2-C128k3-F-D120-D10 C32k5-P2-C64k5-P2-F-D10 \
    "C8k5x3s2same:tanh-A3s1-P2same-Dr0.25-F-D12l2=1e-3l1=0.5-D10:linear" \
    "C32k3same-C32k3-P2-Dr0.25-F-D128l2=0.001-D10" F-D10 "C4k5-P2-F-D10:elu" "C2s3x1valid-A2s2same-F-D3:relu-D10:softmax"; do
    printf '%s' "$spec" >"$out/arch/spec$i"
    i=$((i + 1))
done

# --- digit images ---------------------------------------------------------------
copy_small "$out/image" "$repo"/samples/digit-*.png
if [ $have_data = 1 ]; then
    # the photos and canvases of over 600 pixels a side take a second or
    # more each under ASan: the fuzzer would spend its time on them
    python3 - "$out/image" "$data"/digits/*.png "$data"/digits/*.jpg "$data"/digits/bad/* <<'PY'
import shutil, struct, sys
def size(b):
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 24:
        return struct.unpack(">II", b[16:24])
    i = 2
    while b[:2] == b"\xff\xd8" and i + 9 < len(b) and b[i] == 0xFF:
        marker, length = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return w, h
        i += 2 + length
    return 0, 0  # not an image or a damaged one: keep it
for f in sys.argv[2:]:
    w, h = size(open(f, "rb").read())
    if (w <= 600 and h <= 600) or "/bad/" in f:  # the refused ones are quick
        shutil.copy(f, sys.argv[1])
PY
fi

# --- IDX: the first images and labels of the MNIST test set, plain and gzip ------
if [ $have_data = 1 ] && [ -f "$data/mnist/t10k-images-idx3-ubyte.gz" ]; then
    python3 - "$data/mnist" "$out/idx" <<'PY'
import gzip, os, struct, sys
src, out = sys.argv[1:]
imgs = gzip.open(os.path.join(src, "t10k-images-idx3-ubyte.gz")).read(16 + 3 * 784)
labs = gzip.open(os.path.join(src, "t10k-labels-idx1-ubyte.gz")).read(8 + 3)
imgs = struct.pack(">IIII", 0x803, 3, 28, 28) + imgs[16:]
labs = struct.pack(">II", 0x801, 3) + labs[8:]
for name, b in (("images3", imgs), ("labels3", labs)):
    open(os.path.join(out, name), "wb").write(b)
    open(os.path.join(out, name + ".gz"), "wb").write(gzip.compress(b, mtime=0))
PY
fi
printf '\0\0\10\3\0\0\0\1\0\0\0\2\0\0\0\2\1\2\3\4' >"$out/idx/images1-2x2"
printf '\0\0\10\1\0\0\0\2\7\1' >"$out/idx/labels2"

# --- training histories as cnnviz train writes them ------------------------------
printf '%s' '{"loss": [0.31, 0.12, 0.08], "accuracy": [0.9, 0.96, 0.975], "val_loss": [0.1, 0.07, 0.06], "val_accuracy": [0.97, 0.98, 0.981]}' >"$out/history/h3"
printf '%s' '{"loss": [2.3], "acc": [0.1]}' >"$out/history/h1-acc"
printf '%s' '{"loss": [NaN, 1e308, -0.0, null], "val_acc": [1, 0, 0.5]}' >"$out/history/odd"
for h in keras_h5 keras_zip keras_json arch image idx history; do
    printf '%s: %d seeds\n' "$h" "$(find "$out/$h" -type f | wc -l)"
done
