#!/usr/bin/env bash
# Train several variants side by side on one GPU (a lent device machine) from a carried cache.
# Usage: engine/training/device_sweep.sh CACHE_DIR OUT_DIR MINUTES
# Each variant writes its checkpoint to /tmp and copies weights + log to OUT_DIR/<name>/ at every
# checkpoint, so a run cut short still returns usable weights.
set -u
cache=$1; out=$2; minutes=$3
export PYTHONUNBUFFERED=1
common="--cache $cache --minutes $minutes --batch 64 --log-every 250 --ckpt-seconds 60 --fresh"
run() { name=$1; shift
  python3 -m engine.training.train $common --out /tmp/runs/$name --export $out/$name "$@" \
    > /tmp/runs/$name.stdout 2>&1 &
}
mkdir -p /tmp/runs
nvidia-smi -L || true
run grow3  --grow --lr 3e-4 --seed 1
run grow3bn --grow --lr 3e-4 --norm bn --seed 2
run flat1bn --lr 1e-4 --norm bn --seed 3
run loud1bn --grow --lr 1e-4 --norm bn --start-rms-factor 6 --seed 4
wait
for f in /tmp/runs/*.stdout; do echo "== $f"; grep -v '^{"step": [0-9]*, "t"' "$f" | tail -5; tail -n 2 "$f" | cut -c1-400; done
