"""User-mask holes pre-filled by a membrane (harmonic) interpolation of their rim (fourteenth session).

- harmonic: the fill alone, no network (each masked pixel the mean of its 4 neighbours, solved coarse to fine);
- harmonic+net: the pre-filled image given to the network once, its output taken in the holes;
- mean(current, harmonic): today's `apply --mask` fill averaged with the membrane.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from harness import engine, inpaint, score

translator, vector = engine()


def membrane(rgb: np.ndarray, mask: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Solve Laplace's equation in the holes with the known pixels as boundary: a coarse solve first, refined."""
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask)[None, None].float()
    return (_solve(image, hole, iterations).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _solve(image: torch.Tensor, hole: torch.Tensor, iterations: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    if min(height, width) > 16:  # start from the half-size solution
        known = 1 - hole
        small_known = F.avg_pool2d(known, 2, ceil_mode=True)
        small = F.avg_pool2d(image * known, 2, ceil_mode=True) / small_known.clamp_min(1e-6)
        coarse = _solve(small, (small_known == 0).float(), iterations)
        start = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    else:
        start = torch.full_like(image, float((image * (1 - hole)).sum() / (3 * (1 - hole).sum().clamp_min(1))))
    x = torch.where(hole > 0, start, image)
    kernel = torch.tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]]).expand(3, 1, 3, 3)
    for _ in range(iterations):
        x = torch.where(hole > 0, F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3), image)
    return x


def harmonic(rgb, mask):
    return membrane(rgb, mask)


def harmonic_net(rgb, mask):
    return np.where(mask[..., None], translator.translate_array(membrane(rgb, mask), vector), rgb)


def mean_current_harmonic(rgb, mask):
    current = inpaint(translator, rgb, mask, vector).astype(np.float32)
    return np.rint((current + membrane(rgb, mask)) / 2).astype(np.uint8)


if __name__ == "__main__":
    score(
        {
            "harmonic": harmonic,
            "harmonic+net": harmonic_net,
            "mean": mean_current_harmonic,
            "current": lambda rgb, mask: inpaint(translator, rgb, mask, vector),
        }
    )
