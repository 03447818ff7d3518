#!/bin/sh
# seg's L1 weight (thirteenth session): a branch of the scales run from its state at step 4,120
# (weights/training/base), seg alone, 120 steps at 256 px, batch 8, lr 3e-5, the moving average shortened to 0.98,
# one thread, beside the long run; --seg-l1-weight 8 against the learning-rate probe's 3e-5 arm
# (probes/lr/, the same start, batches and options with the weight at 1). Scored by
# `mixtask eval --only seg,seg+style1` on 48 val samples at 256 px.
set -e
SEG_ONLY="recon=0,inpaint=0,denoise=0,seg=1,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
rm -rf runs/segl1-8 && cp -r weights/training/base runs/segl1-8
OMP_NUM_THREADS=1 mixtask train --resume runs/segl1-8 --steps 4240 --job-weights "$SEG_ONLY" --ema-decay 0.98 \
  --lr 3e-5 --seg-l1-weight 8 -q > runs/segl1-8.out 2>&1
mkdir -p runs/snaps
mixtask snapshot runs/segl1-8 -o runs/snaps/segl1-8.safetensors
OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/segl1-8.safetensors --data ../shared/data --size 256 --count 48 \
  --only seg,seg+style1 --json runs/segl1-8-eval.json --markdown runs/segl1-8-eval.md > runs/segl1-8-eval.out 2>&1
# The control (probes/lr/, arm 3e-5) re-scored with this session's eval, which adds the alpha row (its other rows
# are the same): eval-control-rescored.json
OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/lr-3e-5.safetensors --data ../shared/data --size 256 --count 48 \
  --only seg,seg+style1 --json runs/lr-3e-5-eval2.json --markdown runs/lr-3e-5-eval2.md > runs/lr-3e-5-eval2.out 2>&1
