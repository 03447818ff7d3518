#!/bin/sh
# A probe's branch of the scales run (fifteenth session on): from its state at step 5,878 (weights/training/base at
# commit fb536b4), 120 steps at 256 px, batch 8, lr 3e-5, the moving average shortened to 0.98, one thread; then
# its snapshot scored by `mixtask eval` on 48 val samples at 256 px.
# Usage: sh branch.sh NAME JOB_WEIGHTS "EXTRA TRAIN OPTIONS" EVAL_ONLY   (outputs in runs/NAME*, runs/snaps/)
set -e
name=$1 job_weights=$2 options=$3 only=$4
mkdir -p runs/snaps
rm -rf "runs/$name" && mkdir -p "runs/$name"
git show fb536b4:weights/training/base/checkpoint.pt > "runs/$name/checkpoint.pt"
git show fb536b4:weights/training/base/log.jsonl > "runs/$name/log.jsonl"
# $options is split into words on purpose: it holds the arm's train options
# shellcheck disable=SC2086
OMP_NUM_THREADS=1 mixtask train --resume "runs/$name" --steps 5998 --job-weights "$job_weights" --ema-decay 0.98 \
  $options -q > "runs/$name.out" 2>&1
mixtask snapshot "runs/$name" -o "runs/snaps/$name.safetensors"
OMP_NUM_THREADS=1 mixtask eval -w "runs/snaps/$name.safetensors" --data ../shared/data --size 256 --count 48 \
  --only "$only" --json "runs/$name-eval.json" --markdown "runs/$name-eval.md" > "runs/$name-eval.out" 2>&1
