"""Gate IoU of a weights file on val composites and photos at 256 px, by object size, and with the input shrunk
by 2 and 4 (the receptive field then covers more of the picture). Usage: python gate_by_size.py WEIGHTS"""

import sys

import torch
import torch.nn.functional as F

from mixtask.data import SampleMaker, default_max_side, load_dataset
from mixtask.nets.film import recording_gates
from mixtask.weights import load_weights

torch.set_num_threads(1)
size = 256
ds = load_dataset("../shared/data", "val", max_side=default_max_side(size), warn=lambda m: None)
sets = {
    "comp": SampleMaker(ds, size, 1, mask_fraction=0.0).segmentation(32),
    "photos": SampleMaker(ds, size, 2, mask_fraction=1.0).segmentation(32),
}
model, info = load_weights(sys.argv[1])


def gate_at(x, scale):
    xs = x if scale == 1 else F.interpolate(x, scale_factor=1 / scale, mode="area")
    c = torch.tensor([info.task_set.vector({"seg": 1.0})]).repeat(len(x), 1)
    with torch.no_grad(), recording_gates() as g:
        model(xs, c)
    gl = g[0].float()
    if scale != 1:
        gl = F.interpolate(gl, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(gl) > 0.5


for name, (x, m) in sets.items():
    t = m > 0.5
    frac = t.flatten(1).float().mean(1)
    for scale in (1, 2, 4):
        gate = gate_at(x, scale)
        iou = (gate & t).flatten(1).sum(1).float() / (gate | t).flatten(1).sum(1).float().clamp(min=1)
        small, large = frac < 0.15, frac >= 0.15
        print(
            f"{name} scale 1/{scale}: IoU {iou.mean():.3f}  small (<15 %, n={small.sum()}) {iou[small].mean():.3f}"
            f"  large (n={large.sum()}) {iou[large].mean():.3f}",
            flush=True,
        )
