#!/bin/sh
# A probe's branch of the scales run (fifteenth session on): from its state committed in weights/training/base at
# commit $START (default fb536b4: step 5,878) to step $END (default 5,998: 120 steps), at 256 px, batch 8, lr 3e-5, the
# moving average shortened to 0.98, one thread; then its snapshot scored by `mixtask eval` on 48 val samples at 256 px.
# Usage: [START=COMMIT END=STEP] sh branch.sh NAME JOB_WEIGHTS "EXTRA TRAIN OPTIONS" EVAL_ONLY
# (outputs in runs/NAME*, runs/snaps/)
set -e
name=$1 job_weights=$2 options=$3 only=$4 start=${START:-fb536b4} end=${END:-5998}
mkdir -p runs/snaps
rm -rf "runs/$name" && mkdir -p "runs/$name"
git show "$start":weights/training/base/checkpoint.pt > "runs/$name/checkpoint.pt"
git show "$start":weights/training/base/log.jsonl > "runs/$name/log.jsonl"
# $options is split into words on purpose: it holds the arm's train options
# shellcheck disable=SC2086
OMP_NUM_THREADS=1 mixtask train --resume "runs/$name" --steps "$end" --job-weights "$job_weights" --ema-decay 0.98 \
  $options -q > "runs/$name.out" 2>&1
mixtask snapshot "runs/$name" -o "runs/snaps/$name.safetensors"
OMP_NUM_THREADS=1 mixtask eval -w "runs/snaps/$name.safetensors" --data ../shared/data --size 256 --count 48 \
  --only "$only" --json "runs/$name-eval.json" --markdown "runs/$name-eval.md" > "runs/$name-eval.out" 2>&1
