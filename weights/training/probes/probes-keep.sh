#!/usr/bin/env bash
# Restoration probes (2026-12-05, second session): restoration jobs only (inpaint, denoise), 300 steps at 128 px,
# batch 8, seed 1, lr 3e-4, from the shipped step-5,030 file, each alone on the machine (the long run paused).
# NAME: extra train options. Scored by `mixtask eval --only inpaint,denoise` (16 val samples, 256 px).
#   bash weights/training/probes/probes-keep.sh keep1 --keep-weight 1
set -u
S=../shared/data
JW="recon=0,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,inpaint=1,denoise=1"
name=$1
shift
out=/tmp/probes/$name
rm -rf "$out"
OMP_NUM_THREADS=2 mixtask train --data $S --out "$out" --style style1=$S/styles/style1-starry-night.jpg \
  --style style2=$S/styles/candidates/plasma-autumn.jpg --size 128 --batch 8 --steps 300 --stage1-steps 0 \
  --seed 1 --lr 3e-4 --checkpoint-every 0 --preview-every 0 --adversarial-weight 0 --compile -q \
  --init weights/mixtask-base.safetensors --job-weights $JW "$@"
mixtask eval --data $S -w "$out/weights.safetensors" --count 16 --size 256 --only inpaint,denoise --json "$out-eval256.json"
