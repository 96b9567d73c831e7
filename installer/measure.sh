#!/usr/bin/env bash
# The numbers in docs/INSTALL.md, measured on a built bundle (after installer/build.sh):
#   sizes (unpacked folder, .tar.xz), N cold `faketagger verify` runs of one tagged photo (each a
#   new process; with DROP_CACHES=1, as root on Linux, the page cache is dropped before each run
#   so the bundle is read from disk too), and N GUI starts offscreen: launch -> "window shown" and
#   -> "models: ready" in the app's log. Prints each run, then min and median.
# Usage: installer/measure.sh [BUNDLE_DIR] [N]     (defaults dist/FakeTagger, 5)
set -euo pipefail
BUNDLE=$(cd "${1:-dist/FakeTagger}" && pwd)
N=${2:-5}
CLI="$BUNDLE/faketagger"
GUI="$BUNDLE/FakeTagger"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faketagger-measure.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export FAKETAGGER_HOME="$WORK/home" FAKETAGGER_PASSPHRASE="measure: correct horse battery staple"
cd "$WORK"

stats() { sort -n | awk '{v[NR]=$1} END {printf "min %.2f s, median %.2f s (n=%d)\n", v[1], v[int((NR+1)/2)], NR}'; }
drop() {
    if [[ "${DROP_CACHES:-0}" == 1 ]]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}
log_time() {  # epoch seconds of the first log line holding $1
    date -d "$(grep -m1 -- "$1" "$FAKETAGGER_HOME/logs/faketagger.log" | cut -d' ' -f1-2 | tr , .)" +%s.%N
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "unpacked: $(du -sm "$BUNDLE" | cut -f1) MB ($BUNDLE)"
for archive in "$BUNDLE"/../FakeTagger-*-linux-*.tar.xz; do
    [[ -f "$archive" ]] && echo "packed:   $(( $(stat -c %s "$archive") / 1048576 )) MB ($(basename "$archive"))"
done

"$CLI" identity create --name Measure >/dev/null
"$CLI" protect "$BUNDLE/_internal/assets/sample.jpg" --out out --json >/dev/null
tagged=$(ls out/*)

echo "cold verify of one photo (new process each run; DROP_CACHES=${DROP_CACHES:-0}): wall, CPU"
# CPU time (user + sys) barely grows when other processes compete for the cores, wall time does:
# on a busy machine it is the better estimate of the wall time on an idle one.
for _ in $(seq "$N"); do
    drop
    /usr/bin/time -o time.txt -f "%e %U %S" "$CLI" verify "$tagged" --json | grep -q '"verified"'
    awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' time.txt
done | tee verify.txt | sed 's/^/  /'
echo -n "wall: "; cut -d' ' -f1 verify.txt | stats
echo -n "CPU:  "; cut -d' ' -f2 verify.txt | stats

echo "GUI start offscreen (launch -> window shown, -> models ready):"
for _ in $(seq "$N"); do
    drop
    rm -f "$FAKETAGGER_HOME/logs/faketagger.log"
    t0=$(date +%s.%N)
    QT_QPA_PLATFORM=offscreen "$GUI" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        grep -qs "models: ready" "$FAKETAGGER_HOME/logs/faketagger.log" && break
        sleep 0.05
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    shown=$(log_time "window shown"); ready=$(log_time "models: ready")
    awk -v a="$t0" -v s="$shown" -v r="$ready" 'BEGIN { printf "%.2f %.2f\n", s - a, r - a }'
done | tee gui.txt | sed 's/^/  /'
echo -n "window shown: "; cut -d' ' -f1 gui.txt | stats
echo -n "models ready: "; cut -d' ' -f2 gui.txt | stats
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
