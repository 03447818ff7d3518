"""User-mask holes filled from the outside in (thirteenth session): each pass keeps only the outer `ring` px of
the network's fill and hands the rest of the hole back as a smaller hole (one random colour a pass, or `colours`
averaged), since the network fills the rims of large holes well and leaves their cores tinted."""

from __future__ import annotations

import cv2
import numpy as np
from harness import engine, inpaint, score

translator, vector = engine()


def onion(rgb, mask, ring, colours=1, max_passes=12):
    rng = np.random.default_rng(0)
    current, remaining = rgb.copy(), mask.copy()
    kernel = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    for passes in range(1, max_passes + 1):
        total = np.zeros(rgb.shape, np.float32)
        for _ in range(colours):
            prepared = current.copy()
            prepared[remaining] = rng.integers(0, 256, 3, dtype=np.uint8)
            total += translator.translate_array(prepared, vector)
        fill = np.clip(np.rint(total / colours), 0, 255).astype(np.uint8)
        inner = cv2.erode(remaining.astype(np.uint8), kernel) > 0 if passes < max_passes else np.zeros_like(remaining)
        done = remaining & ~inner
        current[done] = fill[done]
        remaining = inner
        if not remaining.any():
            break
    return current


score(
    {
        "current": lambda rgb, mask: inpaint(translator, rgb, mask, vector),
        "onion8": lambda rgb, mask: onion(rgb, mask, 8),
        "onion4": lambda rgb, mask: onion(rgb, mask, 4),
        "onion8x2": lambda rgb, mask: onion(rgb, mask, 8, colours=2),
    }
)
