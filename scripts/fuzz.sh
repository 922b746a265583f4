#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz with clang (ASan+UBSan) in
# build-fuzz, make their seed corpora there, run each one, and sort what
# they found by whose code it is in.
# Usage: scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]
#   scripts/fuzz.sh 60                # CI: every harness for a minute
#   scripts/fuzz.sh 600 keras_h5 arch # ten minutes each on two of them
# Harnesses: keras_h5 keras_zip keras_json arch image idx history.
# Environment: CNNVIZ_FUZZ_BUILD (build folder, default build-fuzz),
#   CNNVIZ_FUZZ_JOBS (parallel fuzzing processes per harness, default 1),
#   CNNVIZ_SHARED (the shared data, default ../shared).
# Each harness's corpus grows in BUILD/fuzz-corpus/HARNESS across runs; a
# run's crash, leak, timeout and oom files go to BUILD/fuzz-out/HARNESS-TIME/.
# libFuzzer runs with -fork so that it goes on after a crash or a hang (the
# libhdf5 of Debian 12 has known ones). Exit status 1 when a finding's
# faulting frame is in cnnviz's own code (src/) or in a harness, 0 when all
# findings are inside other libraries (listed, with the cnnviz frame that
# called them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
all=(keras_h5 keras_zip keras_json arch image idx history)
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
    [[ " ${all[*]} " == *" $h "* ]] || { echo "fuzz.sh: unknown harness '$h' (there are: ${all[*]})" >&2; exit 2; }
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: '$seconds' is not a number of seconds" >&2; exit 2; }
build=${CNNVIZ_FUZZ_BUILD:-build-fuzz}
jobs=${CNNVIZ_FUZZ_JOBS:-1}

echo "== build $build (clang, libFuzzer, ASan+UBSan)"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCNNVIZ_FUZZ=ON -DCNNVIZ_WERROR=ON >/dev/null
targets=(cnnviz fuzz_seed_attr)
for h in "${all[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

echo "== seed corpora"
seeds=$build/fuzz-seeds
rm -rf "$seeds"
tests/fuzz/make-corpus.sh "$seeds" "$build"

# A leak or a UB report must stop the run it is in so that libFuzzer saves
# the input; the symbolizer turns addresses into file:line.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$repo/tests/fuzz/lsan.supp:print_suppressions=0}
command -v llvm-symbolizer >/dev/null && export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}

dict_of() {
    case $1 in
    keras_json | history) echo "-dict=$repo/tests/fuzz/json.dict" ;;
    arch) echo "-dict=$repo/tests/fuzz/arch.dict" ;;
    esac
}

# The frames of the first stack in a sanitizer or libFuzzer report, minus
# the sanitizer runtime and its interceptors (frames in the harness binary
# without a source line: all of cnnviz is built with -g), libFuzzer and the C
# library: the first one left is where the fault is.
fault_frames() {
    awk '/^ *#[0-9]+ 0x[0-9a-f]+ /{ seen = 1; print; next } seen { exit }' |
        grep -Ev 'compiler-rt/|libclang_rt|/libc\.so|libc\.so\.6|/ld-linux| in (__interceptor_|__asan|__ubsan|__sanitizer|__lsan|fuzzer::)|[( /]fuzz_[a-z0-9_]+\+0x' |
        sed -E 's/ \(BuildId: [0-9a-f]+\)//' || true
}

# "OWNER<TAB>description" for one reproducer: OWNER is cnnviz, harness,
# libhdf5 (or another library's name) or unknown.
triage() { # BINARY FILE
    local log kind frames first owner where via
    # libhdf5 has no frame pointers: the slow unwinder finds the cnnviz
    # caller of a leaked or overflowed allocation made inside it
    log=$(ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" timeout 300 "$1" -runs=1 -timeout=10 \
        -rss_limit_mb=2048 "$2" 2>&1 || true)
    kind=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z-]+|runtime error: [^(]*' <<<"$log" |
        head -1 | sed -E 's/^ERROR: [A-Za-z]+: //; s/^runtime error: //; s/ +$//; s/^detected$/memory leak/')
    [ -n "$kind" ] || kind="no fault on re-run"
    frames=$(fault_frames <<<"$log")
    first=$(head -1 <<<"$frames")
    where=$(sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ (in )?//; s#'"$repo"'/##' <<<"$first")
    case $first in
    "") owner=unknown; where="no stack" ;;
    *"$repo/src/"*) owner=cnnviz ;;
    *"$repo/tests/fuzz/"*) owner=harness ;;
    *) owner=$(grep -oE 'lib[A-Za-z0-9_+-]+\.so' <<<"$first" | head -1 | sed -E 's/(_serial)?\.so$//')
       [ -n "$owner" ] || owner=unknown ;;
    esac
    via=""
    if [ "$owner" != cnnviz ] && [ "$owner" != harness ]; then
        via=$(grep -m1 "$repo/src/" <<<"$frames" | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in //; s#'"$repo"'/##' || true)
        [ -z "$via" ] || via=" (called from $via)"
    fi
    printf '%s\t%s in %s%s\n' "$owner" "$kind" "$where" "$via"
}

# The harnesses' scratch files (fuzz_util.h), removed here: a process
# that crashed or timed out could not
scratch=$(mktemp -d /dev/shm/cnnviz-fuzz-run-XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export CNNVIZ_FUZZ_TMPDIR=$scratch

status=0
summary=()
for h in "${harnesses[@]}"; do
    corpus=$build/fuzz-corpus/$h
    out=$build/fuzz-out/$h-$(date -u +%Y%m%dT%H%M%S)
    mkdir -p "$corpus" "$out"
    # libFuzzer's fork mode cuts every input to 4096 bytes unless told a
    # -max_len: a model file or a photo would be only its first block
    max_len=$(find "$corpus" "$seeds/$h" -type f -printf '%s\n' | sort -n | tail -1)
    [ "${max_len:-0}" -ge 4096 ] || max_len=4096
    echo "== $h: $seconds s (log: $out/fuzz.log)"
    # shellcheck disable=SC2046
    "$build/fuzz_$h" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/" \
        $(dict_of "$h") "$corpus" "$seeds/$h" >"$out/fuzz.log" 2>&1 || true
    # libFuzzer's last stats line (fork mode): #EXECS: cov: C ft: F corp: N exec/s E ...
    last=$(grep -E '^#[0-9]+: cov: ' "$out/fuzz.log" | tail -1)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' <<<"$last" || true)
    # the line's exec/s is the last job's; over the whole run instead:
    took=$(grep -oE 'time: [0-9]+s' <<<"$last" | grep -oE '[0-9]+' || true)
    rate=$([ -n "$execs" ] && [ "${took:-0}" -gt 0 ] && echo $((execs / took)) || true)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    found=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    nfound=$(grep -c . <<<"$found" || true)
    line=$(printf '%-10s %10s execs %6s exec/s  %-22s corpus %5s  findings %s' "$h" "${execs:-?}" "${rate:-?}" \
        "${cov:-cov ?}" "${corp:-?}" "$nfound")
    echo "$line"
    summary+=("$line")
    for f in $found; do
        t=$(triage "$build/fuzz_$h" "$f")
        owner=${t%%$'\t'*}
        echo "   $(basename "$f")  [$owner] ${t#*$'\t'}"
        summary+=("   $f  [$owner] ${t#*$'\t'}")
        if [ "$owner" = cnnviz ] || [ "$owner" = harness ]; then status=1; fi
    done
done
echo "== summary (seconds per harness: $seconds)"
printf '%s\n' "${summary[@]}"
if [ $status != 0 ]; then
    echo "fuzz.sh: findings in cnnviz's own code (marked [cnnviz] or [harness] above)" >&2
fi
exit $status
