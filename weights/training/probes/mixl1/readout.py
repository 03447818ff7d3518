"""Where a seg mix's read-out IoU loses against seg's: precision and recall of the eval's read-out (max channel >
threshold) on the val composites, seg alone, seg+style1 and its target (the Magenta teacher's rendering x mask).

Run from the repository root: python weights/training/probes/mixl1/readout.py WEIGHTS [COUNT]
"""

import sys
from pathlib import Path

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Backbones, Context, make_samples, style_teacher
from mixtask.evaluation.run import EvalOptions, load_model
from mixtask.mixing import derive_mix, render_target

torch.set_num_threads(1)
weights, count = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 48
options = EvalOptions(Path("../shared/data"), weights, size=256, count=count, seed=0)
model, info = load_model(weights)
model = model.eval().to(memory_format=torch.channels_last)
notes: list[str] = []
samples = make_samples(options, notes)
ctx = Context(model, info.task_set, options, samples, Backbones(), {}, notes)
clean, mask = samples.composites
truth = mask > 0.5


def precision_recall_iou(predicted: torch.Tensor) -> tuple[float, float, float]:
    inter = (predicted & truth).sum((1, 2, 3)).float()
    precision = inter / predicted.sum((1, 2, 3)).float().clamp_min(1)
    recall = inter / truth.sum((1, 2, 3)).float().clamp_min(1)
    return precision.mean().item(), recall.mean().item(), metrics.iou(predicted, truth).mean().item()


seg = ctx.translate(clean, {"seg": 1.0})
mix = ctx.translate(clean, {"seg": 1.0, "style1": 1.0})
teacher = style_teacher(Path("../shared/data/styles/style1-starry-night.jpg"), notes)
target = render_target(derive_mix(info.task_set, "seg+style1"), clean, mask, lambda x, name: teacher(x))
for label, output in [("seg", seg), ("seg+style1", mix), ("target", target)]:
    for threshold in (0.05, 0.1, 0.2):
        scores = precision_recall_iou(metrics.foreground(output, threshold))
        print(label, threshold, "precision {:.3f} recall {:.3f} iou {:.3f}".format(*scores))
background = ~truth


def background_level(output: torch.Tensor) -> float:
    return float((output.amax(1, keepdim=True) * background).sum() / background.sum())


print(f"mean max channel in the background: seg {background_level(seg):.4f} mix {background_level(mix):.4f}")
