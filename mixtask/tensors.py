"""Images as tensors: the one bridge between (H, W, C) uint8 arrays and (C, H, W) floats in [0, 1] (one
rounding rule: half up, in fp32), and the one PSNR."""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_MSE = 1e-10  # PSNR of identical images is capped at 100 dB so that means and JSON stay finite


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [0, 1] (a new tensor: the array may be read-only)."""
    array = array if array.flags.writeable else array.copy()  # torch does not take read-only arrays
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255)


def to_uint8(y: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] (any dtype, any shape) -> uint8 0..255, rounded half up in fp32, on the CPU."""
    return y.detach().float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).cpu()


def to_array(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8, C-contiguous."""
    return np.ascontiguousarray(to_uint8(image).permute(1, 2, 0).numpy())


def _per_image_mean(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    if weight is None:
        return x.flatten(1).mean(dim=1)
    weight = weight.expand_as(x).flatten(1)
    return (x.flatten(1) * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1e-12)


def mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image of (B, C, H, W) batches; with `mask` (B, 1, H, W), over the masked pixels."""
    return _per_image_mean((output.float() - target.float()) ** 2, None if mask is None else mask.float())


def psnr(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, for data range 1; identical images give 100 dB (the cap)."""
    return 10.0 * torch.log10(1.0 / mse(output, target, mask).clamp_min(MIN_MSE))


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """One PSNR over two whole tensors of any shape, values clamped to [0, 1] first; NaN (an fp16 overflow)
    gives -inf, so that it fails every quality check."""
    value = float(psnr(a.float().clamp(0, 1).reshape(1, -1), b.float().clamp(0, 1).reshape(1, -1)))
    return value if math.isfinite(value) else -math.inf
