#!/usr/bin/env bash
# Crop size at equal wall time (fourth session, 2026-12-06; alone on the machine): the run's full recipe (every job,
# its job weights, lr 1e-4, --compile), resumed from one state ($START, step 24,277) for 900 s of training time
# (the sum of the log's step seconds, so compilation and the one-time teacher renderings at 512 px are not
# counted) at 256 px and at 128 px; then both scored by `mixtask eval` (16 val samples, 256 px).
set -eu
S=../shared/data
HERE=weights/training/probes/size
for size in 256 128; do
  rm -rf runs/size-$size && cp -r "$START" runs/size-$size
  step=$(python -c "import json; print([json.loads(l) for l in open('runs/size-$size/log.jsonl')][-1]['step'])")
  OMP_NUM_THREADS=2 mixtask train --resume runs/size-$size --size $size -q &
  python $HERE/stop_after.py runs/size-$size/log.jsonl "$step" 900 "mixtask train --resume runs/size-$size"
  wait
  mixtask snapshot runs/size-$size -o runs/size-$size.safetensors
  mixtask eval --data $S -w runs/size-$size.safetensors --only denoise,inpaint,seg,style1,style2 --count 16 \
    --size 256 --json $HERE/p$size.json
done
