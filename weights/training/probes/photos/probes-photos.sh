#!/usr/bin/env bash
# Photo-share probes (eighth session, 2026-12-06; the long run paused, AMD EPYC without AVX-512, fp32): seg alone,
# $STEPS (300) steps at $SIZE (128) px, batch 8, seed 1, lr 1e-4, --compile, from the backbone run's moving average
# ($INIT, step 1,100), the run's network (`--context 3 --context-backbone`), `--seg-photos` 0.3 (today's share of
# masked photos among seg's examples) against 0.6. Arms: p30, p60; e.g. `bash probes-photos.sh p30 p60`.
# Scored by `mixtask eval --only seg` (48 val samples, 256 px) and the gate IoU script of probes/composites/.
set -u
S=../shared/data
HERE=weights/training/probes/photos
INIT=${INIT:-runs/snaps/b5-probe.safetensors}
STEPS=${STEPS:-300}
SIZE=${SIZE:-128}
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for arm in "$@"; do
  out=runs/photos-$arm
  rm -rf $out
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size $SIZE --batch 8 --steps $STEPS --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 100 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init "$INIT" --job-weights $JW --context 3 --context-backbone $S/backbones/efficientnet-lite0.safetensors \
    --seg-photos 0.${arm#p}
  cp $out/log.jsonl $HERE/$arm-log.jsonl
  OMP_NUM_THREADS=2 mixtask eval --data $S -w $out/weights.safetensors --count 48 --size 256 --only seg \
    --json $HERE/$arm-eval256.json
  OMP_NUM_THREADS=2 python weights/training/probes/composites/gate_iou.py $out/weights.safetensors
done
