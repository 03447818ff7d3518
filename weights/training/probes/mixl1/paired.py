"""Paired read-out IoU of two weights files on the same 48 val composites (256 px), for seg or a seg mix.

Run from the repository root: python weights/training/probes/mixl1/paired.py A.safetensors B.safetensors seg+style1
"""

import sys
from pathlib import Path

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Backbones, Context, make_samples
from mixtask.evaluation.run import EvalOptions, load_model

torch.set_num_threads(1)
first, second, job = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
options = EvalOptions(Path("../shared/data"), None, size=256, count=48, seed=0)
samples = make_samples(options, [])
clean, mask = samples.composites
ious = []
for weights in (first, second):
    model, info = load_model(weights)
    ctx = Context(model.eval(), info.task_set, options, samples, Backbones(), {}, [])
    output = ctx.translate(clean, dict.fromkeys(job.split("+"), 1.0))
    ious.append(metrics.iou(metrics.foreground(output), mask > 0.5).float())
difference = ious[1] - ious[0]
better = int((difference > 0).sum())
print(
    f"{job}: A {ious[0].mean():.3f} B {ious[1].mean():.3f} difference {difference.mean():.3f} "
    f"s.e. {difference.std() / len(difference) ** 0.5:.3f}, B better on {better} of {len(difference)}"
)
