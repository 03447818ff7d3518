"""Variants of the Poisson blend of `apply --mask`, on every val photo (fourteenth session).  The network's averaged
fills (`network_fill`) are computed once per photo and cached in /tmp; each variant then only re-blends them.
Variants: the blend as shipped (the correction added in full; 200 Jacobi sweeps a level, or 50 or 25), a fraction of
the correction, and the membrane fill alone (no network) for reference, beside OpenCV Telea.
Run from the repository root: python weights/training/probes/usermask/blend_variants.py WEIGHTS [PHOTOS]
"""

from __future__ import annotations

import cv2
import numpy as np
from fill_harmonic import membrane
from harness import cached, damaged_photos, engine, hole_psnr

from mixtask.inference import blending
from mixtask.inference.blending import poisson_blend
from mixtask.inference.inpainting import network_fill

translator, vector = engine()


def swept(known, fill, mask, sweeps):
    blending.SWEEPS, kept = sweeps, blending.SWEEPS
    try:
        return poisson_blend(known, fill, mask)
    finally:
        blending.SWEEPS = kept


def partial(known, fill, mask, fraction):
    full = poisson_blend(known, fill, mask).astype(np.float32)
    return np.rint(fill + fraction * (full - fill)).astype(np.uint8)


variants = {
    "fill": lambda known, fill, mask: np.where(mask[..., None], fill, known),
    "blend": poisson_blend,  # as shipped: 25 sweeps a level (200 when these numbers were first taken)
    "blend 200 sweeps": lambda k, f, m: swept(k, f, m, 200),
    "blend 50 sweeps": lambda k, f, m: swept(k, f, m, 50),
    "blend 25 sweeps": lambda k, f, m: swept(k, f, m, 25),
    "blend 0.5": lambda k, f, m: np.where(m[..., None], partial(k, f, m, 0.5), k),
    "blend 0.75": lambda k, f, m: np.where(m[..., None], partial(k, f, m, 0.75), k),
    "membrane": lambda known, fill, mask: membrane(known, mask),
}
scores = {name: [] for name in [*variants, "telea"]}
for path, clean, damaged, holes in damaged_photos():
    fill = cached(path.stem, network_fill, translator, damaged, holes, vector)
    for name, method in variants.items():
        scores[name].append(hole_psnr(method(damaged, fill, holes), clean, holes))
    telea = cv2.inpaint(damaged, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    scores["telea"].append(hole_psnr(telea, clean, holes))
    print(path.name[:30], " ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()), flush=True)
print("MEAN", " ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()))
print("WINS vs telea", " ".join(f"{k} {sum(a >= b for a, b in zip(v, scores['telea']))}" for k, v in scores.items()))
