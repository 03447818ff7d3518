"""Frozen VGG16 feature extractor for perceptual and style losses.

Simonyan & Zisserman (2014), "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (https://arxiv.org/abs/1409.1556), used as a loss network as in Gatys et al.
(2016, https://arxiv.org/abs/1508.06576) and Johnson et al. (2016,
https://arxiv.org/abs/1603.08155). Only conv1_1 .. conv4_3 (torchvision `features[:23]`) are
needed: the losses read relu1_2, relu2_2, relu3_3 and relu4_3.

Two weight files are understood, told apart by their content, each with its own input
convention:
- our shared `vgg16-features.safetensors` (HED edge-fine-tuned VGG16, keys `0.weight ...`,
  Caffe convention: BGR, 0-255, minus the ImageNet mean, no std), recognised by its metadata;
- torchvision's ImageNet `vgg16` state dict (`.pth`, keys `features.N.*`, classifier ignored;
  RGB in [0, 1] with ImageNet mean/std). A bare `features` state dict with no metadata is
  taken to be torchvision's too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from mixtask.backbones.files import StateFile, freeze, load_strict, read_state_file
from mixtask.errors import MixtaskError

WHAT = "VGG16"
VGG_ENV = "MIXTASK_VGG"
SHARED_VGG = Path(__file__).resolve().parents[3] / "shared" / "data" / "backbones" / "vgg16-features.safetensors"
TORCHVISION_VGG = "vgg16-397923af.pth"
PERCEPTUAL_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
VGG16_WIDTHS = (64, 128, 256, 512)
CONVS_PER_STAGE = (2, 2, 3, 3)
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)  # conv1_1 .. conv4_3 in features[:23]


class CaffeNormalize(nn.Module):
    """RGB [0, 1] -> BGR, 0-255, minus the per-channel mean (the Caffe VGG convention)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * 255.0 - self.mean


class ImageNetNormalize(nn.Module):
    """RGB [0, 1] -> (x - mean) / std with torchvision's ImageNet statistics."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def vgg16_layers(widths: Iterable[int] = VGG16_WIDTHS) -> nn.Sequential:
    """torchvision's `vgg16().features[:23]` layout (conv3x3 + ReLU, 2x2 max-pool between stages).

    Other `widths` give the same indices with fewer channels (tiny test networks).
    """
    layers: list[nn.Module] = []
    c_in = 3
    for stage, (width, convs) in enumerate(zip(widths, CONVS_PER_STAGE)):
        if stage:
            layers.append(nn.MaxPool2d(2, 2))
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = width
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Named ReLU outputs of a frozen VGG; input RGB in [0, 1], (B, 3, H, W).

    `features` is run only up to the deepest layer asked for; `normalize` maps [0, 1] RGB to
    the convention the weights were trained with.
    """

    def __init__(self, features: nn.Sequential, layer_indices: dict[str, int], normalize: Callable):
        super().__init__()
        self.layer_indices = dict(layer_indices)
        self.features = features[: max(self.layer_indices.values()) + 1]
        self.normalize = normalize
        freeze(self)

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # a loss network never leaves eval mode

    def forward(self, x: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = {name: self.layer_indices[name] for name in (layers or self.layer_indices)}
        by_index = {index: name for name, index in wanted.items()}
        out: dict[str, torch.Tensor] = {}
        h = self.normalize(x)
        for index, layer in enumerate(self.features[: max(wanted.values()) + 1]):
            h = layer(h)
            if index in by_index:
                out[by_index[index]] = h
        return out


def resolve_vgg_path(path: str | Path | None) -> Path:
    """The VGG file to use: `path`, else $MIXTASK_VGG, else the shared file next to the repo."""
    if path is not None:
        return Path(path)
    if os.environ.get(VGG_ENV):
        return Path(os.environ[VGG_ENV])
    if SHARED_VGG.is_file():
        return SHARED_VGG
    raise MixtaskError(
        "the perceptual (style) loss needs VGG16 weights: pass --vgg PATH (or set "
        f"{VGG_ENV}) with either the shared ../shared/data/backbones/vgg16-features.safetensors or "
        f"torchvision's ImageNet vgg16 weights ({TORCHVISION_VGG}, from torchvision.models.VGG16_Weights.IMAGENET1K_V1)"
    )


def features_state(state: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, torch.Tensor], bool]:
    """Keep the conv1_1..conv4_3 tensors, keys renamed to `N.weight`; also say if keys had `features.`."""
    prefixed = any(key.startswith("features.") for key in state)
    prefix = "features." if prefixed else ""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.(weight|bias)$")
    kept = {}
    for key, value in state.items():
        match = pattern.match(key)
        if match and int(match.group(1)) <= max(CONV_INDICES):
            kept[f"{match.group(1)}.{match.group(2)}"] = value.float()
    missing = [f"{prefix}{i}.weight" for i in CONV_INDICES if f"{i}.weight" not in kept]
    if missing:
        raise MixtaskError(
            f"{WHAT} file {path} does not hold VGG16 conv1_1..conv4_3 weights (missing {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}); expected our vgg16-features.safetensors or torchvision's vgg16"
        )
    return kept, prefixed


def input_convention(state_file: StateFile) -> str:
    """'caffe' or 'imagenet', from the file's metadata when it says, else torchvision's convention."""
    text = state_file.metadata.get("input_convention", "")
    if "BGR" in text or "Caffe" in text:
        return "caffe"
    return "imagenet"


def layer_map(state_file: StateFile) -> dict[str, int]:
    """The loss layers' indices; a file may state them in its `perceptual_layers` metadata."""
    text = state_file.metadata.get("perceptual_layers")
    if not text:
        return dict(PERCEPTUAL_LAYERS)
    try:
        layers = {str(name): int(index) for name, index in json.loads(text).items()}
    except (ValueError, AttributeError, TypeError) as error:
        raise MixtaskError(f"{WHAT} file {state_file.path}: unreadable perceptual_layers metadata ({error})") from None
    if layers != PERCEPTUAL_LAYERS:
        raise MixtaskError(f"{WHAT} file {state_file.path} maps loss layers as {layers}, expected {PERCEPTUAL_LAYERS}")
    return layers


def load_vgg(path: str | Path | None = None) -> VGGFeatures:
    """Frozen VGGFeatures from our shared safetensors or torchvision's vgg16 `.pth` (see module doc)."""
    state_file = read_state_file(resolve_vgg_path(path), WHAT)
    state, _ = features_state(state_file.state, state_file.path)
    widths = [state[f"{i}.weight"].shape[0] for i in (0, 5, 10, 17)]
    features = vgg16_layers(widths)
    load_strict(features, state, state_file.path, WHAT)
    normalize = CaffeNormalize() if input_convention(state_file) == "caffe" else ImageNetNormalize()
    return VGGFeatures(features, layer_map(state_file), normalize)
