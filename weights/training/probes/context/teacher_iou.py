"""U2-Net-p mask IoU on the val composites and photos (same samples as gate_iou / eval)."""

import numpy as np

from mixtask.backbones.teachers import SaliencyTeacher
from mixtask.data import SampleMaker, default_max_side, load_dataset

ds = load_dataset("../shared/data", "val", max_side=default_max_side(256), warn=lambda m: None)
t = SaliencyTeacher("../shared/teachers/u2netp.onnx")
for name, (x, m) in {
    "comp": SampleMaker(ds, 256, 1, mask_fraction=0.0).segmentation(32),
    "comp-plain": SampleMaker(ds, 256, 1, mask_fraction=0.0, composites="plain").segmentation(32),
    "photos": SampleMaker(ds, 256, 2, mask_fraction=1.0).segmentation(32),
}.items():
    ious = []
    for i in range(len(x)):
        rgb = (x[i].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        p = t.mask(rgb) > 127
        g = m[i, 0].numpy() > 0.5
        ious.append((p & g).sum() / max((p | g).sum(), 1))
    print(name, f"U2-Net-p IoU {np.mean(ious):.3f}", flush=True)
