"""Seg read out of a sharpened gate: does `film.sharpened_gates` (the restorations' finish) help the black-background
cut-out of seg and seg+style1? The eval's 48 val composites and photos (256 px, seed 0), the read-out IoU
(not-black pixels, the eval's `foreground`) of the soft head and of the head with its gate ramped.

    python weights/training/probes/segsharp/probe.py WEIGHTS
"""

import contextlib
import sys
from pathlib import Path

import torch

from mixtask.evaluation.inputs import EvalOptions, make_samples
from mixtask.evaluation.metrics import foreground, iou
from mixtask.nets.film import sharpened_gates
from mixtask.weights import load_weights

RAMPS = (None, (0.3, 0.7), (0.4, 0.6), (0.5, 0.7))
COUNT = 48


def main(weights: str) -> None:
    torch.set_num_threads(1)
    model, info = load_weights(weights)
    model.eval()
    samples = make_samples(EvalOptions(Path("../shared/data"), Path(weights), size=256, count=COUNT), [])
    sets = {"composites": samples.composites, "photos": samples.photos}
    print(f"{weights}: read-out IoU on {COUNT} val crops of 256 px")
    for task in ("seg", "seg+style1"):
        vector = torch.tensor(info.task_set.vector(dict.fromkeys(task.split("+"), 1.0)))
        for name, (images, masks) in sets.items():
            scores = []
            for ramp in RAMPS:
                outputs = []
                with torch.inference_mode(), sharpened_gates(ramp) if ramp else contextlib.nullcontext():
                    for chunk in images.split(8):
                        outputs.append(model.forward_any_size(chunk, vector.expand(len(chunk), -1)).float().clamp(0, 1))
                scores.append(float(iou(foreground(torch.cat(outputs)), masks > 0.5).mean()))
            print(f"{task:11s} {name:10s} " + "  ".join(f"{r or 'soft'}: {s:.3f}" for r, s in zip(RAMPS, scores)))


if __name__ == "__main__":
    main(*sys.argv[1:])
