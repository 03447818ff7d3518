#!/bin/sh
# The holes' share of the loss (fifteenth session): branches of the scales run from its state at step 5,878
# (weights/training/base at the session's start, commit fb536b4), inpaint alone, 120 steps at 256 px, batch 8,
# lr 3e-5, the moving average shortened to 0.98, one thread each (the two arms side by side, the long run paused);
# --damage-weight 2 (an extra L2 over the hole pixels alone, training.step.damaged_l2) against 0, the same start,
# options and batches. Scored by `mixtask eval --only inpaint` on 48 val samples at 256 px.
# Usage: sh probes-holes.sh WEIGHT (0 and 2).
set -e
weight=$1
INPAINT_ONLY="recon=0,inpaint=1,denoise=0,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
mkdir -p runs/snaps
name=holes-$weight
rm -rf runs/$name && mkdir -p runs/$name
git show fb536b4:weights/training/base/checkpoint.pt > runs/$name/checkpoint.pt
git show fb536b4:weights/training/base/log.jsonl > runs/$name/log.jsonl
OMP_NUM_THREADS=1 mixtask train --resume runs/$name --steps 5998 --job-weights "$INPAINT_ONLY" --ema-decay 0.98 \
  --damage-weight $weight -q > runs/$name.out 2>&1
mixtask snapshot runs/$name -o runs/snaps/$name.safetensors
OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/$name.safetensors --data ../shared/data --size 256 --count 48 \
  --only inpaint --json runs/$name-eval.json --markdown runs/$name-eval.md > runs/$name-eval.out 2>&1
