#!/usr/bin/env bash
# Smoke test of a built desktop bundle, with a fresh FAKETAGGER_HOME and from a folder outside the
# checkout, so nothing can come from the developer install:
#   1. `faketagger --version`, `faketagger demo` (MTCNN, the bundled model, RS, Ed25519, SQLite);
#   2. `faketagger bench` says it needs the developer install;
#   3. the GUI starts offscreen, shows its window, reaches "models: ready", stays up 20 s, and
#      neither its log nor its output holds a traceback or an error;
#   4. identity create -> protect -> verify through the frozen CLI: the tag reads back VERIFIED;
#      the verify runs in a new process (cold) and is timed;
#   5. protect --c2pa -> verify: the bundled C2PA core signs and reads the manifest.
# Usage: installer/smoke_test.sh [BUNDLE_DIR]   (default dist/FakeTagger; an unpacked archive works)
# Environment: SMOKE_READY_TIMEOUT (s to wait for "models: ready", default 120), SMOKE_UP_S (20),
#              KEEP=1 keeps the temporary home and logs.
set -euo pipefail

BUNDLE=$(cd "${1:-dist/FakeTagger}" && pwd)
READY_TIMEOUT=${SMOKE_READY_TIMEOUT:-120}
UP_S=${SMOKE_UP_S:-20}
pick() { for n in "$@"; do [[ -f "$BUNDLE/$n" ]] && { echo "$BUNDLE/$n"; return; }; done; echo ""; }
# Linux: faketagger; Windows and macOS: faketagger-cli (their file systems ignore case, so there
# `faketagger` would find FakeTagger, the GUI: look for faketagger-cli first).
CLI=$(pick faketagger-cli.exe faketagger-cli faketagger)
GUI=$(pick FakeTagger.exe FakeTagger)
[[ -n "$CLI" && -n "$GUI" ]] || { echo "FAIL: no FakeTagger/faketagger executables in $BUNDLE"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/faketagger-smoke.XXXXXX")
export FAKETAGGER_HOME="$WORK/home"
export FAKETAGGER_PASSPHRASE="smoke test: correct horse battery staple"
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
cd "$WORK"
gui_pid=""
cleanup() {
    [[ -n "$gui_pid" ]] && kill "$gui_pid" 2>/dev/null || true
    if [[ "${KEEP:-0}" == 1 ]]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { echo; echo "== $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# Epoch seconds of the log line holding $1 ("2026-12-01 01:50:52,014 INFO ..."), GNU date.
log_time() {
    local line stamp
    line=$(grep -m1 -- "$1" "$LOG") || return 1
    stamp=$(cut -d' ' -f1-2 <<<"$line" | tr , .)
    date -d "$stamp" +%s.%N 2>/dev/null || echo ""
}

step "bundle: $BUNDLE ($(du -sm "$BUNDLE" | cut -f1) MB)"
"$CLI" --version

step "faketagger demo"
"$CLI" demo | tee demo.out
grep -q "Demo OK" demo.out || fail "demo did not pass"

step "faketagger bench (left out of this build)"
if "$CLI" bench --quick 2>bench.err; then fail "bench ran in the desktop build"; fi
cat bench.err
grep -q "needs the developer install" bench.err || fail "bench did not say what it needs"

step "GUI, offscreen: window, models ready, up ${UP_S} s"
LOG="$FAKETAGGER_HOME/logs/faketagger.log"
t0=$(now)
QT_QPA_PLATFORM=offscreen "$GUI" >gui.out 2>&1 &
gui_pid=$!
deadline=$((SECONDS + READY_TIMEOUT))
until grep -qs "models: ready" "$LOG"; do
    kill -0 "$gui_pid" 2>/dev/null || { cat gui.out; cat "$LOG" 2>/dev/null; fail "GUI exited"; }
    grep -qs "models: failed" "$LOG" && { cat "$LOG"; fail "models failed to load"; }
    ((SECONDS < deadline)) || { cat "$LOG" 2>/dev/null; fail "no 'models: ready' in ${READY_TIMEOUT} s"; }
    sleep 0.1
done
t_ready=$(log_time "models: ready" || true)
t_shown=$(log_time "window shown" || true)
[[ -n "$t_shown" ]] && echo "window shown $(elapsed "$t0" "$t_shown") s after launch"
[[ -n "$t_ready" ]] && echo "models ready $(elapsed "$t0" "$t_ready") s after launch"
sleep "$UP_S"
kill -0 "$gui_pid" 2>/dev/null || { cat gui.out "$LOG"; fail "GUI died within ${UP_S} s"; }
kill "$gui_pid"
wait "$gui_pid" 2>/dev/null || true
gui_pid=""
if grep -E "Traceback|CRITICAL| ERROR " "$LOG" gui.out; then fail "errors in the GUI's log or output"; fi
grep -q "window shown" "$LOG" || fail "no 'window shown' in the log"
echo "GUI log:"; sed 's/^/  /' "$LOG"

step "protect + verify round trip through the CLI"
"$CLI" identity create --name "Smoke Test"
mkdir -p in
cp "$BUNDLE/_internal/assets/sample.jpg" in/photo.jpg
"$CLI" protect in/photo.jpg --out out --json >protect.json
cat protect.json
tagged=$(ls out/*)
[[ -f "$tagged" ]] || fail "protect wrote no file"
t1=$(now)
"$CLI" verify "$tagged" --json >verify.json
t2=$(now)
cat verify.json
grep -q '"verdict": "verified"' verify.json || fail "the tag did not verify"
echo "cold verify of one photo: $(elapsed "$t1" "$t2") s (new process)"
"$CLI" verify in/photo.jpg --json >original.json
grep -q '"verdict": "verified"' original.json && fail "the untagged original verified"
grep -q '"verdict": "no_tag"' original.json || fail "the original was not NO TAG"

step "Content Credentials: protect --c2pa, verify reads the manifest (the bundled c2pa core)"
"$CLI" protect in/photo.jpg --out out-c2pa --c2pa --json >protect-c2pa.json
signed=$(ls out-c2pa/*)
"$CLI" verify "$signed" --json >verify-c2pa.json
cat verify-c2pa.json
grep -q '"state": "trusted"' verify-c2pa.json || fail "the bundle did not read its own manifest"
grep -q '"check": "agrees"' verify-c2pa.json || fail "the soft binding did not agree"

echo
echo "SMOKE TEST PASSED"
