#!/bin/sh
# Partial-strengths probe (ninth session, 2026-12-06): two branches of the backbone run from its state at
# step 2,096 (the same checkpoint, Adam moments and moving average), 400 steps each at the run's recipe
# (256 px, batch 8, every job at its weights), run side by side with one thread each; then `mixtask eval`
# with the strength sweep (16 val samples, 256 px) of each branch's moving average.
set -e
mkdir -p runs/evals
cp -r runs/base5 runs/partial
OMP_NUM_THREADS=1 mixtask train --resume runs/partial --steps 2496 --partial-strengths 0.5 -q &
OMP_NUM_THREADS=1 mixtask train --resume runs/base5 --steps 2496 -q &
wait
for arm in partial base5; do
  OMP_NUM_THREADS=1 mixtask eval --data ../shared/data --weights runs/$arm/weights.safetensors --count 16 \
      --strength-sweep --json runs/evals/$arm-2496.json --markdown runs/evals/$arm-2496.md &
done
wait
python weights/training/probes/partial/look_sweep.py examples/skimage-astronaut.jpg runs/evals/look-sweep.png \
    runs/base5/weights.safetensors runs/partial/weights.safetensors
# Is the style metric monotonic along an exact blend of photo and rendering? (the teacher's, and the shipped
# weights' own: the step-1,750 file when it ran)
python weights/training/probes/partial/blend_style_distance.py
