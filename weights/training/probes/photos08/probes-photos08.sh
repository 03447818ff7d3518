#!/bin/sh
# The photos' share of seg's examples (thirteenth session, end): a branch of the scales run from its state at step
# 4,120 (weights/training/base at the session's start, commit 01e61f7), seg alone, 120 steps at 256 px, batch 8,
# lr 3e-5, the moving average shortened to 0.98, 2 threads alone on the machine; --seg-photos 0.8 against the
# learning-rate probe's 3e-5 arm (probes/lr/: the same start and options with 0.6; its batches differ, since the
# share changes which examples are drawn). Scored by `mixtask eval --only seg,seg+style1` on 48 val samples, 256 px.
set -e
SEG_ONLY="recon=0,inpaint=0,denoise=0,seg=1,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
rm -rf runs/photos08 && mkdir -p runs/photos08 && git show 01e61f7:weights/training/base/checkpoint.pt > runs/photos08/checkpoint.pt
git show 01e61f7:weights/training/base/log.jsonl > runs/photos08/log.jsonl
OMP_NUM_THREADS=2 mixtask train --resume runs/photos08 --steps 4240 --job-weights "$SEG_ONLY" --ema-decay 0.98 \
  --lr 3e-5 --seg-photos 0.8 -q > runs/photos08.out 2>&1
mkdir -p runs/snaps
mixtask snapshot runs/photos08 -o runs/snaps/photos08.safetensors
OMP_NUM_THREADS=2 mixtask eval -w runs/snaps/photos08.safetensors --data ../shared/data --size 256 --count 48 \
  --only seg,seg+style1 --json runs/photos08-eval.json --markdown runs/photos08-eval.md > runs/photos08-eval.out 2>&1
