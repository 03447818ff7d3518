"""EfficientNet-Lite0 image features for a Fréchet distance (FID-style metric).

Tan & Le (2019), "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
(https://arxiv.org/abs/1905.11946); the Lite variants (TensorFlow model garden, 2020) drop
squeeze-excitation, use ReLU6 and fixed stem/head widths so they quantise well. The Fréchet
distance over a network's pooled features follows Heusel et al. (2017), "GANs Trained by a
Two Time-Scale Update Rule" (https://arxiv.org/abs/1706.08500), with EfficientNet-Lite0
standing in for Inception-v3.

The architecture is built from the weights file's own metadata (`blocks`), and tensor names
follow the lukemelas/EfficientNet-PyTorch layout (`_conv_stem`, `_blocks.N._expand_conv`, ...)
so the file loads with `strict=True` and no key surgery. (Not timm's `efficientnet_lite0`: its key layout and
block grouping differ from this file's, so loading it would need a key map longer than this module and timm as a
dependency of `eval`.)
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.backbones.files import freeze, load_strict, read_state_file
from mixtask.errors import MixtaskError

WHAT = "EfficientNet-Lite0"
FILE_NAME = "efficientnet-lite0.safetensors"  # its name in a data folder's backbones/ (../shared/data)
INPUT_SIZE = 224
BN_EPS = 1e-3
# (expand_ratio, kernel, stride, in_ch, out_ch) of the 16 MBConv blocks of Lite0.
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16),
    (6, 3, 2, 16, 24), (6, 3, 1, 24, 24),
    (6, 5, 2, 24, 40), (6, 5, 1, 40, 40),
    (6, 3, 2, 40, 80), (6, 3, 1, 80, 80), (6, 3, 1, 80, 80),
    (6, 5, 1, 80, 112), (6, 5, 1, 112, 112), (6, 5, 1, 112, 112),
    (6, 5, 2, 112, 192), (6, 5, 1, 192, 192), (6, 5, 1, 192, 192), (6, 5, 1, 192, 192),
    (6, 3, 1, 192, 320),
)  # fmt: skip


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free convolution with symmetric `kernel // 2` padding (what these weights were trained with)."""
    return nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: [expand 1x1 + BN + ReLU6] -> depthwise kxk + BN + ReLU6 -> project 1x1 + BN."""

    def __init__(self, expand_ratio: int, kernel: int, stride: int, c_in: int, c_out: int):
        super().__init__()
        hidden = c_in * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = conv(c_in, hidden, 1)
            self._bn0 = batch_norm(hidden)
        self._depthwise_conv = conv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = batch_norm(hidden)
        self._project_conv = conv(hidden, c_out, 1)
        self._bn2 = batch_norm(c_out)
        self.expand = expand_ratio != 1
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


SCALE_TAPS = (15, 10, 4)  # the last block at 1/32, at 1/16 and at 1/8 of the image: what `ContextBranch` taps
# Input pixels a trunk output cell sees on each side of its own 32: Lite0's receptive field is 851 px.
TRUNK_HALO = 448
TRUNK_TILE = 1024  # input pixels per tile core in `EfficientNetTrunk.features`
# (TRUNK_HALO and TRUNK_TILE are multiples of every block's stride, at most 32, so each tap stitches on its own grid.)


class EfficientNetTrunk(nn.Module):
    """Stem and MBConv blocks: RGB at any size -> features at 1/32 of it (the last block's channels), and on
    request the outputs of earlier blocks (`features`' taps).

    The global-context branch (`nets.film.ContextBranch`) uses it frozen, on the network's own input."""

    def __init__(self, blocks: Sequence[Sequence[int]] = LITE0_BLOCKS):
        super().__init__()
        stem = blocks[0][3]
        self._conv_stem = conv(3, stem, 3, 2)
        self._bn0 = batch_norm(stem)
        self._blocks = nn.ModuleList(MBConv(*block) for block in blocks)
        self.out_channels = blocks[-1][4]
        self.last = len(blocks) - 1
        self.channels = [block[4] for block in blocks]  # each block's output channels
        self.strides = list(itertools.accumulate((block[2] for block in blocks), operator.mul, initial=2))[1:]

    @staticmethod
    def normalized(x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the weights' input convention `(255 x - 127) / 128`."""
        return (x.float() * 255.0 - 127.0) / 128.0

    def trunk(self, x: torch.Tensor, taps: Sequence[int] = ()) -> torch.Tensor | list[torch.Tensor]:
        """(B, out_channels, ceil(H/32), ceil(W/32)) features of an input already `normalized`; with `taps`
        (block indices), the list of those blocks' outputs instead (the blocks after the last tap are not run)."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        tapped = {}
        for index, block in enumerate(self._blocks[: max(taps) + 1] if taps else self._blocks):
            h = block(h)
            if index in taps:
                tapped[index] = h
        return [tapped[tap] for tap in taps] if taps else h

    def features(
        self, x: torch.Tensor, prepare=None, tile: int = TRUNK_TILE, taps: Sequence[int] | None = None
    ) -> list[torch.Tensor]:
        """The outputs of blocks `taps` (default: the last), each (B, C, ceil(H/s), ceil(W/s)) at its stride s,
        of RGB x in [0, 1] (or of what `prepare` makes of x's windows), in tiles for large images: cores of
        `tile` px with a halo wider than the receptive field, so memory is bounded and every cell is the
        untiled one (eval-mode BatchNorm is local)."""
        prepare = prepare or (lambda window: window)
        taps = [self.last] if taps is None else list(taps)
        height, width = x.shape[-2:]
        if height <= tile and width <= tile:
            return self.trunk(self.normalized(prepare(x)), taps)
        outs: list[torch.Tensor] = []
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                y0, x0 = max(0, top - TRUNK_HALO), max(0, left - TRUNK_HALO)
                window = x[..., y0 : min(height, top + tile + TRUNK_HALO), x0 : min(width, left + tile + TRUNK_HALO)]
                for k, f in enumerate(self.trunk(self.normalized(prepare(window)), taps)):
                    step = self.strides[taps[k]]
                    if len(outs) == k:
                        size = (f.shape[0], f.shape[1], -(-height // step), -(-width // step))
                        outs.append(torch.empty(size, dtype=f.dtype, device=f.device))
                    rows, columns = -(-min(tile, height - top) // step), -(-min(tile, width - left) // step)
                    r0, c0 = (top - y0) // step, (left - x0) // step
                    outs[k][..., top // step : top // step + rows, left // step : left // step + columns] = f[
                        ..., r0 : r0 + rows, c0 : c0 + columns
                    ]
        return outs


class EfficientNetLite(EfficientNetTrunk):
    """Stem -> MBConv blocks -> 1x1 head -> global average pool; `_fc` only for `logits`.

    `forward(x)` takes RGB in [0, 1], (B, 3, H, W), resizes to `input_size` when needed and
    returns the (B, feature_dim) pooled features that a Fréchet distance compares.
    """

    def __init__(
        self,
        blocks: Sequence[Sequence[int]] = LITE0_BLOCKS,
        head: int = 1280,
        classes: int = 1000,
        input_size: int = INPUT_SIZE,
    ):
        super().__init__(blocks)
        self._conv_head = conv(blocks[-1][4], head, 1)
        self._bn1 = batch_norm(head)
        self._fc = nn.Linear(head, classes)
        self.feature_dim = head
        self.input_size = input_size

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] at any size -> the network's input convention at input_size²."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
        return self.normalized(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled (B, feature_dim) features of an already prepared input."""
        h = F.relu6(self._bn1(self._conv_head(self.trunk(x))))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.prepare(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-1k logits (for checking the weights, not for the metric)."""
        return self._fc(self.forward(x))


def blocks_from_metadata(metadata: dict[str, str], path: Path) -> list[list[int]]:
    """The MBConv table the file describes, or Lite0's when the file says nothing."""
    if "blocks" not in metadata:
        return [list(block) for block in LITE0_BLOCKS]
    try:
        table = json.loads(metadata["blocks"])
        fields = table["fields"]
        order = ["expand_ratio", "kernel", "stride", "in_ch", "out_ch"]
        return [[int(row[fields.index(name)]) for name in order] for row in table["blocks"]]
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise MixtaskError(f"{WHAT} file {path} has unreadable `blocks` metadata ({error})") from None


def load_efficientnet_lite0(path: str | Path) -> EfficientNetLite:
    """Frozen, eval-mode EfficientNet-Lite0 from a safetensors / state-dict file (strict load)."""
    state_file = read_state_file(path, WHAT)
    state = state_file.state
    blocks = blocks_from_metadata(state_file.metadata, state_file.path)
    if "_conv_head.weight" not in state or "_fc.weight" not in state:
        raise MixtaskError(f"{WHAT} file {state_file.path} lacks `_conv_head` / `_fc` tensors: not EfficientNet-Lite")
    head, classes = state["_conv_head.weight"].shape[0], state["_fc.weight"].shape[0]
    model = EfficientNetLite(blocks, head=head, classes=classes)
    load_strict(model, state, state_file.path, WHAT)
    return freeze(model)


def load_trunk_weights(trunk: EfficientNetTrunk, path: str | Path) -> EfficientNetTrunk:
    """The stem and blocks of an EfficientNet-Lite0 weights file into `trunk` (strict), frozen; the file's head
    is not needed."""
    state_file = read_state_file(path, WHAT)
    if blocks_from_metadata(state_file.metadata, state_file.path) != [list(block) for block in LITE0_BLOCKS]:
        raise MixtaskError(f"{WHAT} file {state_file.path}: its blocks are not Lite0's")
    head = ("_conv_head.", "_bn1.", "_fc.")
    stem_and_blocks = {key: value for key, value in state_file.state.items() if not key.startswith(head)}
    load_strict(trunk, stem_and_blocks, state_file.path, WHAT)
    return freeze(trunk)
