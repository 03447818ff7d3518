#!/bin/sh
# The gated head's fill base (sixteenth session): the renormalised colours as offsets from a local pull-push fill of
# the input (--head gated-fill) against the whole-image mean (gated, the run's head). Two fresh runs warm-started
# from the shipped step-6,633 average, inpaint and denoise alone, 120 steps at 256 px, batch 8, lr 1e-4 (a fresh
# Adam), the run's other options, one thread each side by side, the same batches. Scored by `mixtask eval --only
# inpaint,denoise` on 48 val samples. Usage: sh probes-fillhead.sh gated|gated-fill
set -e
name="fill-$1"
RESTORE="recon=0,inpaint=1,denoise=1,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
mkdir -p runs/snaps
rm -rf "runs/$name"
OMP_NUM_THREADS=1 mixtask train --data ../shared/data --out "runs/$name" \
  --style style1=../shared/data/styles/style1-starry-night.jpg \
  --style style2=../shared/data/styles/candidates/plasma-autumn.jpg \
  --init weights/mixtask-base.safetensors --context 3 \
  --context-backbone ../shared/data/backbones/efficientnet-lite0.safetensors --context-scales 3 \
  --style-loss teacher --seg-loss mask --adversarial-weight 0 --ema-decay 0.98 --lr 1e-4 --size 256 --batch 8 \
  --seed 16 --steps 120 --stage1-steps 0 --job-weights "$RESTORE" --compile --checkpoint-every 50 \
  --preview-every 0 --seg-photos 0.8 --partial-strengths 0.3 --seg-l1-weight 8 --mix-l1-weight 8 \
  --style-texture 0.2 --head "$1" -q > "runs/$name.out" 2>&1
mixtask snapshot "runs/$name" -o "runs/snaps/$name.safetensors"
OMP_NUM_THREADS=1 mixtask eval -w "runs/snaps/$name.safetensors" --data ../shared/data --size 256 --count 48 \
  --only inpaint,denoise --json "runs/$name-eval.json" --markdown "runs/$name-eval.md" > "runs/$name-eval.out" 2>&1
