#!/usr/bin/env bash
# Global-context probes (fifth session, 2026-12-06; alone on the machine): seg alone, 500 steps at 256 px, batch 8,
# seed 1, lr 1e-4, --compile, from the shipped step-27,137 file ($INIT); `--context 0` (the run's network) against
# the values given (3x3 convs of nets.film.ContextBranch, starting at zero), e.g. `bash probes-context.sh 0 3`.
# Scored by `mixtask eval --only seg` (16 val samples, 256 px) and the gate IoU script of probes/composites/.
set -u
S=../shared/data
HERE=weights/training/probes/context
INIT=${INIT:-weights/mixtask-base.safetensors}
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
for n in "$@"; do
  out=runs/context-$n
  rm -rf $out
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size 256 --batch 8 --steps 500 --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 100 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init "$INIT" --job-weights $JW --context $n
  cp $out/log.jsonl $HERE/context-$n-log.jsonl
  OMP_NUM_THREADS=2 mixtask eval --data $S -w $out/weights.safetensors --count 16 --size 256 --only seg \
    --json $HERE/context-$n-eval256.json
  OMP_NUM_THREADS=2 python weights/training/probes/composites/gate_iou.py $out/weights.safetensors
done
