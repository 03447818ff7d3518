"""The alpha cut-out (`apply --cutout alpha`, the default) with its mask ramped like the restorations' gate: the
eval's 48 val composites and photos (256 px, seed 0), IoU of the alpha read three ways: alpha > 0.5, any alpha
(> 1/255: what shows over a background), and the premultiplied colours read as the eval reads a black-background
cut-out (not-black > 0.1: what a reader that drops the alpha sees).

    python weights/training/probes/segsharp/cutout.py WEIGHTS
"""

import sys
from pathlib import Path

import numpy as np
import torch

from mixtask.apply.cutout import Cutout, object_mask
from mixtask.evaluation.inputs import EvalOptions, make_samples
from mixtask.evaluation.metrics import FOREGROUND_THRESHOLD, iou
from mixtask.inference.translator import Translator
from mixtask.nets.film import sharpen_gate
from mixtask.tensors import to_array

COUNT = 48
RAMPS = ((0.3, 0.7), (0.2, 0.8), (0.4, 0.6), (0.1, 0.9))


def main(weights: str) -> None:
    torch.set_num_threads(1)
    translator = Translator.from_file(weights, device="cpu", precision="fp32")
    seg = translator.task_set.names.index("seg")
    cut, vector = Cutout("alpha", seg), translator.task_set.vector({"seg": 1.0})
    samples = make_samples(EvalOptions(Path("../shared/data"), Path(weights), size=256, count=COUNT), [])
    print(f"{weights}: IoU of the alpha cut-out on {COUNT} val crops of 256 px (soft, and ramped over RAMPS)")
    for name, (images, masks) in {"composites": samples.composites, "photos": samples.photos}.items():
        truth = masks > 0.5
        soft = torch.from_numpy(np.stack([object_mask(translator, to_array(x), cut, vector) for x in images]))[:, None]
        rows = {}
        variants = {"soft": soft} | {f"{low}-{high}": sharpen_gate(soft, (low, high)) for low, high in RAMPS}
        for label, mask in variants.items():
            alpha = torch.round(mask * 255) / 255
            premultiplied = (images * alpha).amax(dim=1, keepdim=True)
            rows[label] = [
                float(iou(read, truth).mean())
                for read in (alpha > 0.5, alpha > 0, premultiplied > FOREGROUND_THRESHOLD)
            ]
        print(f"{name}: alpha > 0.5 / any alpha / premultiplied read-out")
        for label, values in rows.items():
            print(f"  {label:8s} " + " / ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main(*sys.argv[1:])
