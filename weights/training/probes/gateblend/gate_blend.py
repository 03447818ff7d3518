"""Blind inpainting (no mask given) Poisson-blended where the network's own gate says it filled (fourteenth session).

For `--task inpaint` the gated head's gate is near 0 where the network generates (the holes it found) and near 1
where it passes the input through. Read as a mask (gate < threshold, optionally grown by a few pixels), it lets the
fill be Poisson-blended into the known pixels around it, as `apply --mask` does with a user's mask. Scored like
`mixtask eval`'s inpaint row: the same 16 val crops of 256 px and their corruptions, PSNR over the whole image and
inside the true holes. Run from the repository root: python weights/training/probes/gateblend/gate_blend.py WEIGHTS
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Backbones, Context, make_samples
from mixtask.evaluation.run import EvalOptions, load_model
from mixtask.inference.blending import poisson_blend

torch.set_num_threads(1)
count = int(sys.argv[2]) if len(sys.argv) > 2 else 16
options = EvalOptions(Path("../shared/data"), Path(sys.argv[1]), size=256, count=count, seed=0)
model, info = load_model(options.weights)
model = model.eval()
samples = make_samples(options, [])
ctx = Context(model, info.task_set, options, samples, Backbones(), {}, [])
kind = sys.argv[3] if len(sys.argv) > 3 else "inpaint"
task = next(t for t in info.task_set.tasks if t.kind == kind)
damaged, holes = ctx.damaged(task)
output = ctx.translate(damaged, {task.name: 1.0})
gate = ctx.gate(damaged, {task.name: 1.0})
clean = samples.clean


def to_uint8(x):
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def blended(threshold: float, grow: int, full_below: float | None = None) -> torch.Tensor:
    """The output blended over gate < threshold; with `full_below`, the correction weighted by the gate: in full
    under `full_below`, fading to 0 at the threshold (continuous in space and in strength)."""
    region = gate < threshold
    if grow:
        region = F.max_pool2d(region.float(), 2 * grow + 1, 1, grow) > 0
    outs = []
    for i in range(len(damaged)):
        fill = to_uint8(output[i : i + 1])[0]  # outside the region the output stays the network's, as apply gives it
        blend = poisson_blend(fill, fill, region[i, 0].numpy())
        if full_below is not None:
            weight = ((threshold - gate[i, 0]) / (threshold - full_below)).clamp(0, 1)[..., None].numpy()
            blend = np.rint(fill + weight * (blend.astype(np.float32) - fill)).astype(np.uint8)
        outs.append(torch.from_numpy(blend).permute(2, 0, 1).float() / 255)
    return torch.stack(outs)


def row(name, image):
    whole = float(metrics.psnr(image, clean).mean())
    inside = float(metrics.psnr(image, clean, holes).mean())
    print(f"{name:28s} PSNR {whole:6.2f}  holes {inside:6.2f}", flush=True)


row("network", output)
true_holes = holes > 0.5
print("gate in true holes: mean", float(gate[true_holes].mean()), " outside:", float(gate[~true_holes].mean()))
for threshold in (0.3, 0.5, 0.7):
    for grow in (0, 2):
        row(f"blend gate<{threshold} grow {grow}", blended(threshold, grow))
for full_below in (0.1, 0.25):
    row(f"blend gate<0.5 full<{full_below}", blended(0.5, 0, full_below))
import mixtask.inference.blending as blending  # noqa: E402

for sweeps in (25, 50, 100):
    blending.SWEEPS = sweeps
    row(f"blend gate<0.5 full<0.25 sweeps {sweeps}", blended(0.5, 0, 0.25))
