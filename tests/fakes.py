"""Tiny fake backbones for everyone's tests: same layer names and APIs, random weights, a few channels.

`tiny_vgg()` stands in for `mixtask.backbones.load_vgg(...)`, `tiny_efficientnet()` for
`load_efficientnet_lite0(...)` (its `feature_dim` is 16, not 1280), `tiny_discriminator()` for a
PatchGAN. All are seeded, so two calls give the same network.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.backbones.efficientnet_lite import EfficientNetLite
from mixtask.backbones.files import freeze
from mixtask.backbones.vgg import PERCEPTUAL_LAYERS, ImageNetNormalize, VGGFeatures, vgg16_layers
from mixtask.training.losses import PatchDiscriminator

TINY_VGG_WIDTHS = (4, 8, 8, 8)
# (expand_ratio, kernel, stride, in_ch, out_ch): stem 8, one block of each kind.
TINY_EFFICIENTNET_BLOCKS = ((1, 3, 1, 8, 8), (2, 3, 2, 8, 12), (2, 5, 1, 12, 12))


def tiny_vgg_layers(seed: int = 0, widths=TINY_VGG_WIDTHS) -> nn.Sequential:
    """vgg16().features[:23] layout with a few channels per stage, random weights."""
    torch.manual_seed(seed)
    return vgg16_layers(widths)


def tiny_vgg(seed: int = 0) -> VGGFeatures:
    """Frozen VGGFeatures with the real layer names (relu1_2 ... relu4_3) and tiny widths."""
    return VGGFeatures(tiny_vgg_layers(seed), PERCEPTUAL_LAYERS, ImageNetNormalize())


def tiny_vgg_state(seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    """A state dict shaped like a (tiny) VGG weights file: keys `N.weight` or `features.N.weight`."""
    return {f"{prefix}{key}": value for key, value in tiny_vgg_layers(seed).state_dict().items()}


def tiny_efficientnet(seed: int = 0) -> EfficientNetLite:
    """Frozen EfficientNet-Lite-shaped feature extractor: (B, 3, H, W) in [0, 1] -> (B, 16)."""
    torch.manual_seed(seed)
    model = EfficientNetLite(TINY_EFFICIENTNET_BLOCKS, head=16, classes=10, input_size=32)
    return freeze(model)


def tiny_discriminator(seed: int = 0, in_channels: int = 6) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(in_channels=in_channels, width=4, layers=3)
