#!/usr/bin/env bash
# Backbone-scales probe (tenth session, 2026-12-06; the long run paused, AMD EPYC Zen 4 with AVX512-BF16): seg
# alone, $STEPS (300) steps at $SIZE (256) px, batch 8, seed 1 (the same batches in both arms), lr 1e-4, --compile,
# --seg-photos 0.6, from the backbone run's moving average at step 5,658 ($INIT), the run's network
# (`--context 3 --context-backbone`) with `--context-scales` 1 (today: the backbone's 1/32 features only) against 3
# (its 1/16 and 1/8 stages also added to the bottleneck through zero-started 1x1s). Both arms side by side, one
# thread each. Arms: s1, s3; e.g. `bash probes-scales.sh s1 s3`. Scored by `mixtask eval --only seg` (48 val
# samples, 256 px) and the gate IoU script of probes/composites/.
set -u
S=../shared/data
HERE=weights/training/probes/scales
INIT=${INIT:-runs/snaps/b5-5658.safetensors}
STEPS=${STEPS:-300}
SIZE=${SIZE:-256}
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for arm in "$@"; do
  out=runs/scales-$arm
  rm -rf $out
  OMP_NUM_THREADS=1 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size $SIZE --batch 8 --steps $STEPS --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 100 --preview-every 0 --adversarial-weight 0 --compile -q \
    --style-loss teacher --seg-loss mask --init "$INIT" --job-weights $JW --context 3 \
    --context-backbone $S/backbones/efficientnet-lite0.safetensors --context-scales ${arm#s} --seg-photos 0.6 &
done
wait
for arm in "$@"; do
  out=runs/scales-$arm
  cp $out/log.jsonl $HERE/$arm-log.jsonl
  OMP_NUM_THREADS=1 mixtask eval --data $S -w $out/weights.safetensors --count 48 --size 256 --only seg \
    --json $HERE/$arm-eval256.json > /dev/null &
done
wait
for arm in "$@"; do
  OMP_NUM_THREADS=2 python weights/training/probes/composites/gate_iou.py runs/scales-$arm/weights.safetensors
done
