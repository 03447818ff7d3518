"""Poisson blending (Perez, Gangnet & Blake 2003) of generated pixels into the known pixels around them.

Where the network generates pixels that were missing, its fill can step at the rim and carry a low-frequency
tint from what the hole held. The blend keeps the fill's own gradients (the network's structure and texture) and
adds a harmonic correction, smooth everywhere in the region, that makes the fill meet the pixels around it
(Iizuka et al. 2017 post-process their completions the same way). Two uses:

- `poisson_blend`: a user's mask (`apply --mask`): +0.46 dB inside the holes on the val photos (+1.26 when the
  head read the holes from its gate; weights/training/probes/usermask/results.txt);
- `blend_generated`: a plain restoration (`--task inpaint`, `denoise`, both; `restore`), where the gated head's
  own gate says which pixels the network generated: +0.9 dB inside the holes and the scratches on the val crops
  (weights/training/probes/gateblend/README.txt).

The correction h is harmonic in the region, and on the ring of known pixels around it (those with a 4-neighbour
in the region) it is the known pixel less the fill beside it. It is solved coarse to fine with Jacobi sweeps, on
the region's bounding box only. (OpenCV's `seamlessClone` does the like, but OpenCV stays out of inference
installs.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixtask.mixing import RESTORATION_KINDS

if TYPE_CHECKING:
    import numpy as np
    import torch

# Jacobi sweeps per pyramid level. The coarse start does most of the work: 25, 50, 200 and 1,000 sweeps give the
# same hole PSNR within 0.02 dB on the val probes.
SWEEPS = 25
FINE_SWEEPS, FINE_PIXELS = 8, 512 * 512  # above this size a level starts close enough: fewer, costly sweeps
# The gate (0: generated, 1: the input passed through) below which a restoration's pixel counts as generated, and
# below which its correction is applied in full: between the two it fades, so that the output stays continuous in
# space and in strength (at low strengths the gate rises over the holes and the blend fades out). On the val
# crops: generated below 0.3 / 0.5 / 0.7: holes +0.84 / +0.91 / +0.67 dB; fading from 0.25: +0.90.
GENERATED_BELOW = 0.5
FULL_BELOW = 0.25


def blends(task_set, vector) -> bool:
    """Whether `blend_generated` finishes this vector: restorations only, at least one of them on."""
    kinds = {task.kind for task, value in zip(task_set.tasks, vector, strict=True) if value > 0}
    return bool(kinds) and kinds <= set(RESTORATION_KINDS)  # their gate marks what was missing (seg's: the object)


def restore(translator, rgb: np.ndarray, vector) -> np.ndarray:
    """(H, W, 3) uint8 under a restoration alone (`blends`) -> the output as `apply` writes it: one pass, at full
    strength with the gated head's gate sharpened (`mixtask.nets.film.sharpened_gates`), the generated pixels
    blended into the passed-through pixels around them (`blend_generated`). Below full strength the gate stays
    soft: there it is the input's share that the strength asks for, and sharpened it filled the holes as fully at
    0.8 as at 1 (inpaint's sweep as `apply` finishes it rose to 0.8 and fell after)."""
    sharpen = all(float(value) >= 1 for value in vector if float(value) > 0)
    output, gate = translator.translate_with_gate(rgb, vector, sharpen=sharpen)
    return output if gate is None else blend_generated(output, gate)


def blend_generated(output: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 output of a restoration and its gate (H, W) in [0, 1] -> the output with its generated
    pixels (gate < GENERATED_BELOW) blended into the passed-through pixels around them."""
    import numpy as np

    region = gate < GENERATED_BELOW
    if not region.any():
        return output
    blended = poisson_blend(output, output, region).astype(np.float32)
    weight = np.clip((GENERATED_BELOW - gate) / (GENERATED_BELOW - FULL_BELOW), 0, 1)[..., None]
    return np.rint(output + weight * (blended - output)).astype(np.uint8)


def poisson_blend(known: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image and fill, (H, W) bool mask -> (H, W, 3) uint8: in the mask the fill plus its harmonic
    correction, elsewhere `known` bit for bit. A mask without a rim (it covers the whole image) keeps the fill."""
    import numpy as np

    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return known.copy()
    height, width = mask.shape
    top, bottom = max(0, rows.min() - 1), min(height, rows.max() + 2)  # the box and the ring around it
    left, right = max(0, cols.min() - 1), min(width, cols.max() + 2)
    box = (slice(top, bottom), slice(left, right))
    blended = _blend_box(known[box], fill[box], mask[box])
    out = known.copy()
    out[box] = np.where(mask[box][..., None], blended, known[box])
    return out


def _blend_box(known: np.ndarray, fill: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    from mixtask.inference import devices
    from mixtask.tensors import from_uint8

    known_t, fill_t = from_uint8(known)[None], from_uint8(fill)[None]
    hole = torch.tensor(mask, dtype=torch.float32)[None, None]
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    neighbours = F.conv2d(F.pad(hole, (1, 1, 1, 1)), cross[None, None])  # hole neighbours of each pixel
    ring = (hole == 0) & (neighbours > 0)
    if not ring.any():
        return fill
    fill_beside = F.conv2d(F.pad(fill_t * hole, (1, 1, 1, 1)), cross.expand(3, 1, 3, 3), groups=3)
    on_ring = torch.where(ring, known_t - fill_beside / neighbours.clamp_min(1), torch.zeros_like(known_t))
    with devices.threads_for(0, torch.device("cpu")):  # memory-bound slices: one thread, no barrier waits
        correction = _harmonic(on_ring, (~ring).float())  # the ring cuts each hole off from the rest
    out = (fill_t + correction).clamp_(0, 1).mul_(255).round_()
    return out[0].permute(1, 2, 0).to(torch.uint8).numpy()


def _harmonic(values: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) values fixed where `unknown` (1, 1, H, W) is 0 -> the harmonic fill of the rest: each unknown
    pixel the mean of its 4 neighbours. Started from the half-size solution, so a few sweeps per level suffice."""
    import torch
    import torch.nn.functional as F

    height, width = values.shape[-2:]
    fixed = 1 - unknown
    if min(height, width) > 16:
        small_fixed = F.avg_pool2d(fixed, 2, ceil_mode=True)
        small = F.avg_pool2d(values * fixed, 2, ceil_mode=True) / small_fixed.clamp_min(1e-6)
        coarse = _harmonic(small, (small_fixed == 0).float())
        start = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    else:
        start = (values * fixed).sum((2, 3), keepdim=True) / fixed.sum().clamp_min(1)
        start = start.expand_as(values)
    free = unknown > 0
    sweeps = SWEEPS if height * width <= FINE_PIXELS else FINE_SWEEPS
    padded = F.pad(torch.where(free, start, values), (1, 1, 1, 1), mode="replicate")
    inner, around = padded[..., 1:-1, 1:-1], torch.empty_like(values)
    for _ in range(sweeps):  # Jacobi: each free pixel the mean of its 4 neighbours; the buffers are reused
        torch.add(padded[..., :-2, 1:-1], padded[..., 2:, 1:-1], out=around)
        around.add_(padded[..., 1:-1, :-2]).add_(padded[..., 1:-1, 2:]).mul_(0.25)
        inner.copy_(torch.where(free, around, values))
        padded[..., 0, :], padded[..., -1, :] = padded[..., 1, :], padded[..., -2, :]  # replicate the edges
        padded[..., :, 0], padded[..., :, -1] = padded[..., :, 1], padded[..., :, -2]
    return inner
