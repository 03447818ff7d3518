#!/usr/bin/env bash
# The probes of the model card (2026-12-05): each trains from the step-25,100 file (unless --fresh) at 96 px,
# batch 8, seed 1, then scores the result with `mixtask eval` on 16 val samples at 96 and at 256 px.
# Run from the repository root; writes /tmp/probes/NAME/ and /tmp/probes/NAME-eval{96,256}.json.
set -u
probe() {  # probe NAME STEPS [train options...]
  local name=$1 steps=$2 init="--init weights/mixtask-base.safetensors" args=()
  shift 2
  for a in "$@"; do if [ "$a" = "--fresh" ]; then init=""; else args+=("$a"); fi; done
  local S=../shared/data out=/tmp/probes/$name
  OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size 96 --batch 8 --steps "$steps" --stage1-steps 0 \
    --seed 1 --checkpoint-every 0 --preview-every 0 $init -q "${args[@]}"
  for size in 96 256; do
    mixtask eval --data $S -w $out/weights.safetensors --count 16 --size $size --json $out-eval$size.json
  done
}
SEGONLY="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
STYONLY="recon=0,inpaint=0,denoise=0,seg=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
probe seg-l2 600 --job-weights $SEGONLY --seg-loss l2 --lr 3e-4
probe seg-mask 600 --job-weights $SEGONLY --seg-loss mask --lr 3e-4
probe seg-mask-noadv 600 --job-weights $SEGONLY --seg-loss mask --adversarial-weight 0 --lr 3e-4
probe seg-mask-noadv-lr1e-3 600 --job-weights $SEGONLY --seg-loss mask --adversarial-weight 0 --lr 1e-3
probe seg-mask-noadv-fresh 600 --job-weights $SEGONLY --seg-loss mask --adversarial-weight 0 --lr 1e-3 --fresh
probe style-teacher 600 --job-weights $STYONLY --style-loss teacher --lr 3e-4
probe style-perceptual-c4 300 --job-weights $STYONLY --style-loss perceptual --content-weight 4 --lr 3e-4
