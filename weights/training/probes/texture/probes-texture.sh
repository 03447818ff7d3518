#!/bin/sh
# The styles' texture term (--style-texture), twelfth session: two branches of the scales run from its state at
# step 3,209 (weights/training/base), style1 and style2 alone, 120 steps at the run's 256 px, batch 8, side by
# side with one thread each, the long run paused; the moving average shortened to 0.98 in both so that it holds
# the branch's own steps. Scored by `mixtask eval --only style1,style2 --strength-sweep` (16 val samples, 256 px).
set -e
STYLES_ONLY="recon=0,inpaint=0,denoise=0,seg=0,style1=1,style2=1,denoise+style1=0,denoise+seg=0,seg+style1=0"
for arm in ctl w02; do rm -rf runs/tex-$arm && cp -r weights/training/base runs/tex-$arm; done
OMP_NUM_THREADS=1 mixtask train --resume runs/tex-ctl --steps 3329 --job-weights "$STYLES_ONLY" --ema-decay 0.98 -q \
  > runs/tex-ctl.out 2>&1 &
OMP_NUM_THREADS=1 mixtask train --resume runs/tex-w02 --steps 3329 --job-weights "$STYLES_ONLY" --ema-decay 0.98 \
  --style-texture 0.2 -q > runs/tex-w02.out 2>&1 &
wait
for arm in ctl w02; do mixtask snapshot runs/tex-$arm -o runs/snaps/tex-$arm.safetensors; done
for arm in ctl w02; do
  OMP_NUM_THREADS=1 mixtask eval -w runs/snaps/tex-$arm.safetensors --data ../shared/data --size 256 --count 16 \
    --only style1,style2 --strength-sweep --json runs/tex-$arm-eval.json --markdown runs/tex-$arm-eval.md \
    > runs/tex-$arm-eval.out 2>&1 &
done
wait
