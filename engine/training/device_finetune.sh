#!/usr/bin/env bash
# Fine-tune a trained model at its deployed residual strength on a lent GPU, two learning rates
# side by side. Usage: engine/training/device_finetune.sh CACHE INIT_WEIGHTS RMS OUT MINUTES [ARGS]
# Extra ARGS go to engine.training.train, e.g. the DeepFake proxies, which need only torch and
# the tracked generator weights (a lent GPU has no dlib/OpenCV):
#   ... 0.0128 $OUT 9 --version 2 --proxy 0.6 --chroma-weight 0.5
set -u
cache=$1; init=$2; rms=$3; out=$4; minutes=$5; shift 5
export PYTHONUNBUFFERED=1
common="--cache $cache --init $init --norm bn --rms $rms --start-level 1.0 --start-rms-factor 1.0
  --minutes $minutes --batch 64 --log-every 250 --ckpt-seconds 45 --fresh"
mkdir -p /tmp/runs
for lr in 1e-4 3e-5; do
  python3 -m engine.training.train $common --lr $lr --seed 7 --out /tmp/runs/ft$lr \
    --export $out/ft$lr "$@" > /tmp/runs/ft$lr.stdout 2>&1 &
done
wait
for f in /tmp/runs/*.stdout; do echo "== $f"; tail -n 2 "$f" | cut -c1-400; done
