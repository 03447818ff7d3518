"""The network's fill harmonised with its rim by Poisson blending (fourteenth session).

`apply --mask` prepares the holes as training does and averages the fills of 4 colours ("current"). Here that fill
keeps its own gradients inside each hole while its values are made continuous with the known pixels around it
(Perez et al. 2003; Iizuka et al. 2017 post-process their completions so): the result is the fill plus a
harmonic correction h, whose values on the ring of known pixels around a hole are the known pixel less the
fill beside it. A fill tinted by its hole's colour, with a step at the rim, loses the step and the tint's
low-frequency part.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from fill_harmonic import _solve
from harness import engine, inpaint, score

translator, vector = engine()
CROSS = torch.tensor([[0, 1.0, 0], [1, 0, 1], [0, 1, 0]]).expand(3, 1, 3, 3)


def poisson(rgb: np.ndarray, mask: np.ndarray, fill: np.ndarray, iterations: int = 200) -> np.ndarray:
    known = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    filled = torch.from_numpy(fill).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask)[None, None].float()
    inside = F.conv2d(F.pad(filled * hole, (1, 1, 1, 1)), CROSS, groups=3)  # sum of the fill over hole neighbours
    count = F.conv2d(F.pad(hole.expand(1, 3, -1, -1), (1, 1, 1, 1)), CROSS, groups=3)
    ring = (hole == 0) & (count[:, :1] > 0)
    boundary = known - inside / count.clamp_min(1)  # the known pixel less the fill beside it
    unknown = (~ring).float()  # the ring separates each hole from the rest (4-neighbour stencil)
    correction = _solve(torch.where(ring, boundary, torch.zeros_like(boundary)), unknown, iterations)
    out = (filled + correction).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.where(mask[..., None], np.rint(out * 255).astype(np.uint8), rgb)


def current(rgb, mask):
    return inpaint(translator, rgb, mask, vector)


def blended(rgb, mask):
    return poisson(rgb, mask, current(rgb, mask))


if __name__ == "__main__":
    score(
        {
            "current": current,
            "poisson": blended,
            "poisson 1000": lambda rgb, mask: poisson(rgb, mask, current(rgb, mask), 1000),
        }
    )
