#!/usr/bin/env bash
# Backbone probes (sixth session, 2026-12-06; alone on the machine, AMD EPYC without AVX512, fp32 75 GFLOP/s on a 3x3 conv): seg alone,
# $STEPS (300) steps at $SIZE (128) px, batch 8, seed 1, lr 1e-4, --compile, from the context run's step-3,174 moving average ($INIT),
# `--context 3` (the run's network) against `--context 3 --context-backbone` (EfficientNet-Lite0 features added to
# the branch through a zero-started 1x1). Arms: `plain`, `backbone`; e.g. `bash probes-backbone.sh plain backbone`.
# Scored by `mixtask eval --only seg` (16 val samples, 256 px) and the gate IoU script of probes/composites/.
set -u
S=../shared/data
HERE=weights/training/probes/backbone
INIT=${INIT:-runs/snaps/b4-3174.safetensors}
STEPS=${STEPS:-300}
SIZE=${SIZE:-128}
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for arm in "$@"; do
  out=runs/backbone-$arm
  extra=()
  [ "$arm" = backbone ] && extra=(--context-backbone $S/backbones/efficientnet-lite0.safetensors)
  rm -rf $out
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size $SIZE --batch 8 --steps $STEPS --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 100 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init "$INIT" --job-weights $JW --context 3 "${extra[@]}"
  cp $out/log.jsonl $HERE/$arm-log.jsonl
  OMP_NUM_THREADS=2 mixtask eval --data $S -w $out/weights.safetensors --count 16 --size 256 --only seg \
    --json $HERE/$arm-eval256.json
  OMP_NUM_THREADS=2 python weights/training/probes/composites/gate_iou.py $out/weights.safetensors
done
