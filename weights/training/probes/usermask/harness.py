"""Shared by the user-mask fill probes: the val photos with the training holes, scored inside the holes.

Each probe script passes its fill methods (rgb, hole mask -> filled rgb) to `score`, which prints one line per
photo and the means beside OpenCV Telea (radius 5), as `benchmarks/inpaint_mask.py` scores `apply --mask`.
Run from the repository root: python weights/training/probes/usermask/fill_colours.py WEIGHTS [PHOTOS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from inpaint_mask import hole_psnr, shrunk

from mixtask.data.damage import damage
from mixtask.images import INPUT_EXTENSIONS, load_image

SIDE = 512  # the benchmark's long side


def val_photos(limit: int) -> list[Path]:
    folder = Path("../shared/data/photos/val")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in INPUT_EXTENSIONS)[:limit]


def score(methods: dict, limit: int) -> None:
    torch.set_num_threads(1)
    scores = {name: [] for name in [*methods, "telea"]}
    for seed, path in enumerate(val_photos(limit)):
        clean = shrunk(load_image(path).rgb, SIDE)
        damaged, mask = damage(clean, ("inpaint",), seed)
        holes = mask > 127
        for name, fill in methods.items():
            scores[name].append(hole_psnr(fill(damaged, holes), clean, holes))
        telea = cv2.inpaint(damaged, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        scores["telea"].append(hole_psnr(telea, clean, holes))
        print(path.name[:30], " ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()), flush=True)
    print("MEAN", " ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()))
