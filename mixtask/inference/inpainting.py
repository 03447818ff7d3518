"""Inpainting told where the holes are: `mixtask apply --mask`'s fill (`mixtask.apply.usermask` reads the masks),
also scored by `mixtask eval` (its row `model given the mask`).

- The masked pixels are prepared the way training holes are (`mixtask.data.corruptions`: a constant colour the
  network learnt to see as "missing"), the network fills them, and every pixel outside the mask is the input's,
  bit for bit.
- The network is told where the holes are: the gated head takes the mask as its gate, in place of its own guess,
  and the fill head's local fill reads the known pixels alone (`Translator.translate_array(..., known=)`).
- The fill colour changes the result, so FILL_PASSES seeded colours are run and their fills averaged.
- The averaged fill is Poisson-blended into the known pixels around each hole (`mixtask.inference.blending`): its
  gradients kept, its values made to meet the hole's rim. The network's fill leans towards the colour its hole
  was given and steps at the rim; the blend removes both (+0.46 dB inside the holes on the val photos with the
  shipped file, told where the holes are; +1.26 dB when the head read them from its gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixtask.inference.blending import poisson_blend

if TYPE_CHECKING:  # numpy is imported where a mask is filled: the CLI's help stays fast
    import numpy as np

# Hole PSNR of the shipped step-5,030 file on 16 val crops at 256 px with the training holes (Telea: 20.40 dB):
# one colour per hole as in training 16.24 dB, one seeded colour for all holes 16.10, mid-grey 15.14, the image's
# mean 14.82; the fills of 2 / 4 / 8 seeded colours averaged: 16.38 / 16.78 / 16.98 dB.
FILL_PASSES = 4
FILL_SEED = 0


def inpaint(translator, rgb: np.ndarray, mask: np.ndarray, vector: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8 with `mask` (H, W) bool -> the same image with the masked pixels filled by the network and
    blended into their rim; every other pixel is the input's."""
    if not mask.any():
        return rgb.copy()
    return poisson_blend(rgb, network_fill(translator, rgb, mask, vector), mask)


def network_fill(translator, rgb: np.ndarray, mask: np.ndarray, vector: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8: the network's output with the masked pixels prepared as training holes, averaged over
    FILL_PASSES seeded colours (before the blend; the unmasked pixels are the network's too)."""
    import numpy as np

    rng = np.random.default_rng(FILL_SEED)
    total = np.zeros(rgb.shape, dtype=np.float32)
    for _ in range(FILL_PASSES):
        prepared = rgb.copy()
        prepared[mask] = rng.integers(0, 256, 3, dtype=np.uint8)  # one constant colour, as a training hole
        total += translator.translate_array(prepared, vector, known=~mask)
    return np.clip(np.rint(total / FILL_PASSES), 0, 255).astype(np.uint8)
