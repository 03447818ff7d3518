"""User-mask holes prepared with other colours than the training holes' random ones (thirteenth session).

- current: `apply --mask`'s path (4 seeded random colours, their fills averaged);
- ring: each hole (8-connected component) filled with the mean colour of a 3-px ring around it, one pass;
- coarse: the same on a copy with a 256-px long side (holes the size training saw), the fill up-sampled;
- coarse+pass: that up-sampled fill given to the network once more at full size.
"""

from __future__ import annotations

import cv2
import numpy as np
from harness import engine, inpaint, score
from PIL import Image

translator, vector = engine()


def net(rgb):
    return translator.translate_array(rgb, vector)


def ring_mean_fill(rgb, mask, width=3):
    out = rgb.copy()
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    for k in range(1, count):
        hole = labels == k
        ring = (cv2.dilate(hole.astype(np.uint8), kernel) > 0) & ~mask
        out[hole] = rgb[ring].mean(0).round().astype(np.uint8) if ring.any() else 128
    return out


def ring(rgb, mask):
    return np.where(mask[..., None], net(ring_mean_fill(rgb, mask)), rgb)


def coarse(rgb, mask, side=256, second=False):
    height, width = mask.shape
    scale = side / max(height, width)
    if scale >= 1:
        return ring(rgb, mask)
    size = (round(width * scale), round(height * scale))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    small_mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)) > 0
    filled = net(ring_mean_fill(small, small_mask))
    up = np.asarray(Image.fromarray(filled).resize((width, height), Image.Resampling.BICUBIC))
    first = np.where(mask[..., None], up, rgb)
    return np.where(mask[..., None], net(first), rgb) if second else first


score(
    {
        "current": lambda rgb, mask: inpaint(translator, rgb, mask, vector),
        "ring": ring,
        "coarse": coarse,
        "coarse+pass": lambda rgb, mask: coarse(rgb, mask, second=True),
    }
)
