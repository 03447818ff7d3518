"""What piggyback, tsn and topdown share: a plain Johnson trunk, any-size padding, the head.

The trunk is the Johnson et al. (2016) network of `mixtask.model.MixNet` with its plain
InstanceNorm + learned affine instead of FiLM (https://arxiv.org/abs/1603.08155); Piggyback
masks its weights and the top-down network modulates its layers. Conv shapes, padding and the
output head are MixNet's, so parameter counts compare like for like.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.model import (
    GATED_CHANNELS,
    ConvLayer,
    ModelConfig,
    NormFiLM,
    apply_gated_head,
    input_stats,
    padding_to_multiple,
)


class AffineNorm(NormFiLM):
    """InstanceNorm with its own learned per-channel affine; `delta` (gamma, beta) is added to it."""

    def __init__(self, channels: int, relu: bool = False):
        super().__init__(channels, relu)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, delta: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        gamma, beta = self.weight, self.bias
        if delta is not None:
            gamma, beta = gamma + delta[0], beta + delta[1]
        return super().forward(x, gamma[None], beta[None])


def trunk_shapes(config: ModelConfig) -> list[tuple[int, int, int, int, bool]]:
    """(in, out, kernel, stride, upsample) of the 15 normed Johnson convs (for 5 residual blocks)."""
    w = config.width
    return [
        (3, w, 9, 1, False), (w, 2 * w, 3, 2, False), (2 * w, 4 * w, 3, 2, False),
        *[(4 * w, 4 * w, 3, 1, False)] * (2 * config.res_blocks),
        (4 * w, 2 * w, 3, 1, True), (2 * w, w, 3, 1, True),
    ]  # fmt: skip


def output_channels(config: ModelConfig) -> int:
    return GATED_CHANNELS if config.head == "gated" else 3


def output_conv(config: ModelConfig) -> ConvLayer:
    """The last 9x9 conv, width -> RGB (or the gated head's 5 channels, gate and blend at 0.5)."""
    conv = ConvLayer(config.width, output_channels(config), 9)
    if config.head == "gated":
        nn.init.zeros_(conv.conv.weight[3:])
        nn.init.zeros_(conv.conv.bias[3:])
    return conv


def finish(config: ModelConfig, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The image from the last conv's output, through the configured head (see MixNet.forward)."""
    if config.head == "rgb":
        return raw
    return apply_gated_head(raw, x, *input_stats(x)).to(raw.dtype)


def conv_parameters(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * c_out * kernel * kernel + c_out


class JohnsonTrunk(nn.Module):
    """The Johnson convs with InstanceNorm + affine after each (no FiLM); ReLU where Johnson has one."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.res_blocks = config.res_blocks
        self.convs = nn.ModuleList(ConvLayer(*shape) for shape in trunk_shapes(config))
        self.norms = nn.ModuleList(AffineNorm(conv.conv.out_channels) for conv in self.convs)
        self.relus = (True,) * 3 + (True, False) * config.res_blocks + (True,) * 2
        self.output = output_conv(config)

    def activate(self, i: int, y: torch.Tensor) -> torch.Tensor:
        return F.relu(y) if self.relus[i] else y

    def layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Normed layer i, unmodified: conv, norm with its affine, ReLU."""
        return self.activate(i, self.norms[i](self.convs[i](h)))

    def run(self, x: torch.Tensor, layer: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Encoder, residual blocks, decoder; `layer(i, h)` computes normed layer i. Returns the
        features before the output conv."""
        layer = layer or self.layer
        h = x
        for i in range(3):
            h = layer(i, h)
        for i in range(3, 3 + 2 * self.res_blocks, 2):
            h = h + layer(i + 1, layer(i, h))
        for i in range(3 + 2 * self.res_blocks, len(self.convs)):
            h = layer(i, h)
        return h

    @staticmethod
    def parameter_count(config: ModelConfig) -> int:
        shapes = trunk_shapes(config)
        convs = sum(conv_parameters(c_in, c_out, k) for c_in, c_out, k, _, _ in shapes)
        affines = sum(2 * c_out for _, c_out, _, _, _ in shapes)
        return convs + affines + conv_parameters(config.width, output_channels(config), 9)


def pad_like(t: torch.Tensor, pad_h: int, pad_w: int, height: int, width: int) -> torch.Tensor:
    """Pad right/bottom as forward_any_size pads images: reflection when it fits, else replicate."""
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(t, (0, pad_w, 0, pad_h), mode=mode)


def forward_any_size(forward: Callable, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """`forward(x, c)` for any H, W: pad to a multiple of 4 (at least 16), run, crop back.

    A per-pixel task map c (B, tasks, H, W) is padded exactly like x."""
    height, width = x.shape[-2:]
    pad_h, pad_w = padding_to_multiple(height), padding_to_multiple(width)
    if pad_h or pad_w:
        x = pad_like(x, pad_h, pad_w, height, width)
        if c.dim() == 4:
            c = pad_like(c, pad_h, pad_w, height, width)
    return forward(x, c)[..., :height, :width]
