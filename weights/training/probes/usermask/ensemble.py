"""More passes for `apply --mask`'s fill before the blend (fourteenth session): the 4 seeded colours' fills averaged
(today) against 8 colours, and against the 4 colours' fills averaged with the 4 of the mirrored image (mirrored
back). Every val photo at 512 px, the fills cached in /tmp; each scored after the Poisson blend, beside Telea.
Run from the repository root: python weights/training/probes/usermask/ensemble.py WEIGHTS [PHOTOS]
"""

from __future__ import annotations

import cv2
import numpy as np
from harness import cached, damaged_photos, engine, hole_psnr

from mixtask.inference import inpainting as usermask  # the fill moved there (eighteenth session)
from mixtask.inference.blending import poisson_blend

translator, vector = engine()


def mirrored_fill(rgb, holes):
    flip = np.ascontiguousarray
    return usermask.network_fill(translator, flip(rgb[:, ::-1]), flip(holes[:, ::-1]), vector)[:, ::-1]


def fill_with(rgb, holes, seed):
    kept = usermask.FILL_SEED
    usermask.FILL_SEED = seed
    try:
        return usermask.network_fill(translator, rgb, holes, vector)
    finally:
        usermask.FILL_SEED = kept


scores = {name: [] for name in ("4 colours", "8 colours", "4 + 4 mirrored", "telea")}
for path, clean, damaged, holes in damaged_photos():
    four = cached(path.stem, usermask.network_fill, translator, damaged, holes, vector).astype(np.float32)
    other = cached(f"{path.stem}-seed1", fill_with, damaged, holes, 1).astype(np.float32)
    mirror = cached(f"{path.stem}-mirrored", mirrored_fill, damaged, holes).astype(np.float32)
    for name, fill in (("4 colours", four), ("8 colours", (four + other) / 2), ("4 + 4 mirrored", (four + mirror) / 2)):
        blended = poisson_blend(damaged, np.rint(fill).astype(np.uint8), holes)
        scores[name].append(hole_psnr(blended, clean, holes))
    telea = cv2.inpaint(damaged, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    scores["telea"].append(hole_psnr(telea, clean, holes))
    print(path.name[:30], " ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()), flush=True)
print("MEAN", " ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()))
print("WINS vs telea", " ".join(f"{k} {sum(a >= b for a, b in zip(v, scores['telea']))}" for k, v in scores.items()))
