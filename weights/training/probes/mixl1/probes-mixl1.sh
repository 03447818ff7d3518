#!/bin/sh
# The seg mixes' L1 (fifteenth session): branches of the scales run from its state at step 5,878
# (weights/training/base at the session's start, commit fb536b4), seg+style1 alone, 120 steps at 256 px, batch 8,
# lr 3e-5, the moving average shortened to 0.98, one thread each (the two arms side by side, the long run paused);
# --mix-l1-weight 8 against 0 (the same start, options and batches). Scored by `mixtask eval --only seg+style1` on
# 48 val samples at 256 px. Usage: sh probes-mixl1.sh WEIGHT (0 and 8).
set -e
weight=$1
MIX_ONLY="recon=0,inpaint=0,denoise=0,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=1"
mkdir -p runs/snaps
name=mixl1-$weight
rm -rf runs/$name && mkdir -p runs/$name
git show fb536b4:weights/training/base/checkpoint.pt > runs/$name/checkpoint.pt
git show fb536b4:weights/training/base/log.jsonl > runs/$name/log.jsonl
OMP_NUM_THREADS=1 mixtask train --resume runs/$name --steps 5998 --job-weights "$MIX_ONLY" --ema-decay 0.98 \
  --mix-l1-weight $weight -q > runs/$name.out 2>&1
mixtask snapshot runs/$name -o runs/snaps/$name.safetensors
OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/$name.safetensors --data ../shared/data --size 256 --count 48 \
  --only seg+style1 --json runs/$name-eval.json --markdown runs/$name-eval.md > runs/$name-eval.out 2>&1
