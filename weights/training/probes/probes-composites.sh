#!/usr/bin/env bash
# Seg composite probes (2026-12-05, third session): seg alone, 500 steps at 128 px, batch 8, seed 1, lr 1e-4 (the
# run's rate), from the run's step-17,135 snapshot; --composites pasted (today) against plain and union. Scored by
# `mixtask eval --only seg` (16 val samples, 256 px; its composites are always `pasted`: any background).
set -u
S=../shared/data
INIT=${INIT:-/tmp/probes/s17135.safetensors}
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for mode in "$@"; do
  out=/tmp/probes/composites-$mode
  rm -rf $out
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size 128 --batch 8 --steps 500 --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 0 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init $INIT --job-weights $JW --composites $mode
  mixtask eval --data $S -w $out/weights.safetensors --count 16 --size 256 --only seg --json $out-eval256.json
done
