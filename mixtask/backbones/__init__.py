"""Pretrained backbones: VGG16 (perceptual/style losses) and EfficientNet-Lite0 (Fréchet distance).

Both are frozen feature extractors taking RGB in [0, 1]; each knows its own input
convention, so callers never normalise. See `vgg.py` and `efficientnet_lite.py`.
"""

from mixtask.backbones.efficientnet_lite import EfficientNetLite, load_efficientnet_lite0
from mixtask.backbones.vgg import PERCEPTUAL_LAYERS, VGGFeatures, load_vgg, vgg16_layers

__all__ = [
    "PERCEPTUAL_LAYERS",
    "EfficientNetLite",
    "VGGFeatures",
    "load_efficientnet_lite0",
    "load_vgg",
    "vgg16_layers",
]
