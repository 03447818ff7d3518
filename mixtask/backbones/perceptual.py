"""Feature statistics through a pretrained VGG, shared by the style loss (training) and the style metrics
(evaluation): Gram matrices (Gatys et al. 2016, https://arxiv.org/abs/1508.06576), the relative error that makes
every layer count about equally whatever the VGG's input scale, and the per-style Gram targets (Johnson et al. 2016).
Everything computes in float32, also under bf16 autocast: Grams are sums over H*W products.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CONTENT_LAYERS = ("relu2_2", "relu3_3")
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
EPS = 1e-12  # a target norm below this counts as this

StyleGrams = dict[str, torch.Tensor]  # layer name -> (1, C, C) float32 Gram matrix


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrices normalised by C*H*W, in float32 (Johnson et al.)."""
    b, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def relative_errors(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||² / ||target||² per sample (target broadcast over the batch, its norm detached)."""
    value, target = value.float(), target.to(value.device).float().expand_as(value)
    error = (value - target).pow(2).flatten(1).sum(dim=1)
    return error / target.detach().pow(2).flatten(1).sum(dim=1).clamp_min(EPS)


def relative_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`relative_errors` averaged over the batch: the loss form."""
    return relative_errors(value, target).mean()


@torch.no_grad()
def style_targets(
    vgg: nn.Module, style_image: torch.Tensor, sizes: Sequence[int] | None = None, layers: Sequence[str] = STYLE_LAYERS
) -> StyleGrams:
    """Gram targets of one style image (1, 3, H, W) in [0, 1]; compute once per style.

    Pass the image at the training resolution (Gram statistics depend on scale: brush strokes
    span fewer VGG cells in a larger image). With `sizes`, the image is resized so that its short
    side is each size in turn and the Grams are averaged: a multi-scale style.
    """
    images = [style_image] if not sizes else [resize_short_side(style_image, size) for size in sizes]
    grams: StyleGrams = {}
    for image in images:
        for name, features in vgg(image, layers=layers).items():
            grams[name] = grams.get(name, 0) + gram_matrix(features) / len(images)
    return grams


def resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic, antialiased resize so that min(H, W) == size, clamped to [0, 1]."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    target = (max(1, round(h * scale)), max(1, round(w * scale)))
    resized = F.interpolate(image.float(), size=target, mode="bicubic", antialias=True, align_corners=False)
    return resized.clamp(0, 1)
