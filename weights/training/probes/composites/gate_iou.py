"""Gate IoU on val composites (pasted on any background / on plain backgrounds) and val photo pairs."""

import sys

import torch

from mixtask.data import SampleMaker, default_max_side, load_dataset
from mixtask.nets.film import recording_gates
from mixtask.weights import load_weights

torch.set_num_threads(1)
size = 256
ds = load_dataset("../shared/data", "val", max_side=default_max_side(size), warn=lambda m: None)
sets = {
    "composites-any": SampleMaker(ds, size, 1, mask_fraction=0.0).segmentation(32),
    "composites-plain": SampleMaker(ds, size, 1, mask_fraction=0.0, composites="plain").segmentation(32),
    "photos": SampleMaker(ds, size, 2, mask_fraction=1.0).segmentation(32),
}
for w in sys.argv[1:]:
    model, info = load_weights(w)
    row = []
    for name, (x, m) in sets.items():
        c = torch.tensor([info.task_set.vector({"seg": 1.0})]).repeat(len(x), 1)
        with torch.no_grad(), recording_gates() as g:
            model(x, c)
        gate = torch.sigmoid(g[0].float()) > 0.5
        inter = (gate & (m > 0.5)).flatten(1).sum(1).float()
        union = (gate | (m > 0.5)).flatten(1).sum(1).float()
        row.append(f"{name} {(inter / union.clamp(min=1)).mean().item():.3f}")
    print(w, " | ".join(row), flush=True)
