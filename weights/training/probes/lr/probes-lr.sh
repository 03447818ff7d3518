#!/bin/sh
# The learning rate after 4,000 steps (thirteenth session): two branches of the scales run from its state at step
# 4,120 (weights/training/base), seg alone, 120 steps at the run's 256 px, batch 8, the same batches in both, side
# by side with one thread each, the long run paused; lr 1e-4 (the run's) against 3e-5; the moving average
# shortened to 0.98 in both so that it holds the branch's own steps. Scored by `mixtask eval --only seg,seg+style1`
# on 48 val samples at 256 px.
set -e
SEG_ONLY="recon=0,inpaint=0,denoise=0,seg=1,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
for arm in 1e-4 3e-5; do rm -rf runs/lr-$arm && cp -r weights/training/base runs/lr-$arm; done
for arm in 1e-4 3e-5; do
  OMP_NUM_THREADS=1 mixtask train --resume runs/lr-$arm --steps 4240 --job-weights "$SEG_ONLY" --ema-decay 0.98 \
    --lr $arm -q > runs/lr-$arm.out 2>&1 &
done
wait
mkdir -p runs/snaps
for arm in 1e-4 3e-5; do mixtask snapshot runs/lr-$arm -o runs/snaps/lr-$arm.safetensors; done
for arm in 1e-4 3e-5; do
  OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/lr-$arm.safetensors --data ../shared/data --size 256 --count 48 \
    --only seg,seg+style1 --json runs/lr-$arm-eval.json --markdown runs/lr-$arm-eval.md > runs/lr-$arm-eval.out 2>&1 &
done
wait
