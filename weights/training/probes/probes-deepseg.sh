#!/usr/bin/env bash
# Seg deep-supervision probes (prepared 2026-12-05, third session; to run alone on the machine): seg alone, 500
# steps at 128 px, batch 8, seed 1, lr 1e-4, from the run's latest snapshot ($INIT); --deep-seg-weight 0 (the
# run's recipe) against the values given, e.g. `INIT=/tmp/probes/s.safetensors bash probes-deepseg.sh 0 0.5 2`.
# Scored by `mixtask eval --only seg` (16 val samples, 256 px) and the gate IoU script of probes/composites/.
set -u
S=../shared/data
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for w in "$@"; do
  out=/tmp/probes/deepseg-w$w
  rm -rf $out
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size 128 --batch 8 --steps 500 --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 0 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init "$INIT" --job-weights $JW --deep-seg-weight $w
  mixtask eval --data $S -w $out/weights.safetensors --count 16 --size 256 --only seg --json $out-eval256.json
  python weights/training/probes/composites/gate_iou.py $out/weights.safetensors
done
