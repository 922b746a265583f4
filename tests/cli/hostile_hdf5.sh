#!/usr/bin/env bash
# A crash or a hang inside libhdf5 is not a crash or a hang of cnnviz: the model file is parsed in a child
# process (src/io/isolate.c). The two libhdf5 1.10.8 inputs in hostile/ and a reader process that dies of a
# signal each give exit 1, one stderr line naming the file, no signal, in under 10 s.
. "$(dirname "$0")/lib.bash"
need_shared data/keras/hostile
H=$SHARED/data/keras/hostile
asan=0
ldd "$CNNVIZ" 2>/dev/null | grep -q libasan && asan=1

# run_timed FILE CMD...: $rc, $secs, $err, $out of CMD
run_timed() {
  local start end
  start=$(date +%s%N)
  out=$(timeout -s KILL 30 "$@" 2>"$TMP/stderr"); rc=$?
  end=$(date +%s%N)
  secs=$(( (end - start) / 1000000000 ))
  err=$(cat "$TMP/stderr")
}

# no_crash FILE: no signal, under 10 s, and when refused one line naming FILE and no output
no_crash() {
  local f=$1
  if [ "$rc" -ge 128 ]; then fail "$f: killed by signal $((rc - 128))"; return 1; fi
  if [ "$secs" -ge 10 ]; then fail "$f: took $secs s"; return 1; fi
  if [ "$rc" != 0 ]; then
    if [ "$rc" != 1 ]; then fail "$f: exit $rc, wanted 1"; return 1; fi
    if [ "$(printf '%s\n' "$err" | wc -l)" != 1 ]; then fail "$f: wanted one stderr line, got: $err"; return 1; fi
    case $err in "cnnviz: $f: "*) ;; *) fail "$f: stderr '$err' does not name the file"; return 1;; esac
    if [ -n "$out" ]; then fail "$f: printed on stdout: $out"; return 1; fi
  fi
  pass
}

# Spins in H5C_protect in process (the loop asks for 16 GB): refused, whatever the message.
f=$H/hdf5_global_heap_loop.h5
run_timed "$CNNVIZ" summary "$f"
no_crash "$f" && { [ "$rc" = 1 ] && pass || fail "$f: exit $rc, wanted 1"; }

# A heap over-read in H5HG_read: under ASan the child's interceptors catch it and the child dies; in a
# Release build glibc's heap usually hides an 8-byte over-read, and the model then loads as it did before.
f=$H/hdf5_vlen_heap_overflow.h5
run_timed "$CNNVIZ" summary "$f"
if no_crash "$f" && [ "$asan" = 1 ]; then
  case $err in *"the HDF5 library failed while reading this file (corrupt or hostile)") pass;;
    *) fail "$f: under ASan wanted the HDF5 failure, got exit $rc: $err";; esac
fi

# A reader process that dies of a signal (here SIGSEGV while it waits to open a FIFO nobody writes, as it
# would inside libhdf5): one line, exit 1, and the file named.
f=$TMP/never.h5
mkfifo "$f"
"$CNNVIZ" summary "$f" >"$TMP/stdout" 2>"$TMP/stderr" &
pid=$!
sent=0
for _ in $(seq 100); do pkill -SEGV -P "$pid" && { sent=1; break; }; sleep 0.05; done
[ "$sent" = 1 ] || { echo "no reader process started"; kill -KILL "$pid"; }
wait "$pid"; rc=$?
err=$(cat "$TMP/stderr")
if [ "$rc" = 1 ] && [ "$err" = "cnnviz: $f: the HDF5 library failed while reading this file (corrupt or hostile)" ] &&
  [ ! -s "$TMP/stdout" ]; then pass; else fail "a SIGSEGV in the reader process: exit $rc, stderr '$err'"; fi
finish
