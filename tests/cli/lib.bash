# tests/cli/lib.bash, sourced by the CLI tests (not a test itself): paths, a scratch folder, and small assertions.
# CTest sets CNNVIZ (the binary), CNNVIZ_SOURCE_DIR and CNNVIZ_SHARED_DEFAULT.
set -u
: "${CNNVIZ:?run through ctest (CNNVIZ is the cnnviz binary)}"
SHARED=${CNNVIZ_SHARED:-${CNNVIZ_SHARED_DEFAULT:-}}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cnnviz-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
FAILS=0
PASSES=0

need_shared() { # need_shared REL: skip (77) unless $SHARED/REL exists
  if [ -z "$SHARED" ] || [ ! -e "$SHARED/$1" ]; then
    echo "SKIP: shared data '$1' not found (set CNNVIZ_SHARED to the shared/ folder)"
    exit 77
  fi
}
pass() { PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # check "what" COMMAND...: the command must succeed
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}
# expect_error CODE PATTERN CMD...: exit code CODE, exactly one stderr line matching PATTERN, empty stdout
expect_error() {
  local code=$1 pattern=$2; shift 2
  local out err rc
  out=$("$@" 2>"$TMP/stderr"); rc=$?
  err=$(cat "$TMP/stderr")
  if [ "$rc" != "$code" ]; then fail "$* exited $rc, wanted $code (stderr: $err)"; return; fi
  # a usage error may add git's "Try 'cnnviz CMD --help'" hint as a second line
  local lines=1; [ "$code" = 2 ] && err=$(printf '%s\n' "$err" | grep -v "^Try 'cnnviz")
  if [ "$(printf '%s\n' "$err" | wc -l)" != "$lines" ]; then fail "$*: wanted one stderr line, got: $err"; return; fi
  if ! printf '%s\n' "$err" | grep -Eq -- "$pattern"; then fail "$*: stderr '$err' does not match '$pattern'"; return; fi
  if [ "$code" != 2 ] && [ -n "$out" ]; then fail "$*: printed on stdout: $out"; return; fi
  pass
}
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" = 0 ]
}
