"""The plain Johnson trunk of encin, ccam, sharedenc and single, and its parameter arithmetic.

Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer"
(https://arxiv.org/abs/1603.08155), the same layers as `mixtask.model.MixNet` (reflection-
padded `ConvLayer`s, nearest x2 up-sampling), but normalised the usual way: InstanceNorm with
its own learned affine (Ulyanov et al. 2016, https://arxiv.org/abs/1607.08022), no FiLM.
The output conv and its head (`config.head`: the paper's "rgb" or our "gated", see
`mixtask.model.apply_gated_head`) are shared with MixNet, so a comparison varies only the
conditioning: every InstanceNorm trunk is blind to its input's exposure, and the gated head
is the fix for all of them alike.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.model import GATED_CHANNELS, ConvLayer, ModelConfig, apply_gated_head, input_stats, pad_any_size


class ConvNorm(nn.Module):
    """Reflection-padded conv (optionally after x2 up-sampling), InstanceNorm with affine, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: bool = False, relu=True):
        super().__init__()
        self.conv = ConvLayer(c_in, c_out, kernel, stride, upsample)
        self.norm = nn.InstanceNorm2d(c_out, affine=True)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x))
        return F.relu(y) if self.relu else y


class ResidualBlock(nn.Module):
    """Johnson's residual block: x + IN(conv(ReLU(IN(conv(x)))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(ConvNorm(channels, channels, 3), ConvNorm(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


def plain_encoder(width: int) -> nn.Sequential:
    """conv9x9 3->w, conv3x3/2 w->2w, conv3x3/2 2w->4w: full to 1/4 resolution."""
    return nn.Sequential(ConvNorm(3, width, 9), ConvNorm(width, 2 * width, 3, 2), ConvNorm(2 * width, 4 * width, 3, 2))


def plain_residual(width: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(4 * width) for _ in range(blocks)))


def plain_decoder(width: int) -> nn.Sequential:
    """Two nearest x2 up-samplings + conv3x3: 4w -> 2w -> w channels."""
    return nn.Sequential(ConvNorm(4 * width, 2 * width, 3, upsample=True), ConvNorm(2 * width, width, 3, upsample=True))


def output_channels(config: ModelConfig) -> int:
    return GATED_CHANNELS if config.head == "gated" else 3


class OutputHead(nn.Module):
    """The last conv9x9 w -> 3 (or 5, gated) with no norm, then the configured head (as MixNet)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gated = config.head == "gated"
        self.conv = ConvLayer(config.width, output_channels(config), 9)
        if self.gated:  # gate and blend start at 0.5 everywhere, as in MixNet
            nn.init.zeros_(self.conv.conv.weight[3:])
            nn.init.zeros_(self.conv.conv.bias[3:])

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """h: last decoder features; x: the network's input image (the gated head passes it through)."""
        raw = self.conv(h)
        return apply_gated_head(raw, x, *input_stats(x)).to(raw.dtype) if self.gated else raw


class PlainJohnson(nn.Module):
    """One whole unconditioned Johnson network: x (B, 3, H, W), sides multiples of 4 -> image."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.encoder = plain_encoder(config.width)
        self.residual = plain_residual(config.width, config.res_blocks)
        self.decoder = plain_decoder(config.width)
        self.head = OutputHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.residual(self.encoder(x))), x)


def forward_any_size(net: nn.Module, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """`net.forward(x, c)` for any H and W: padded as `MixNet.forward_any_size`, cropped back.

    A per-pixel task map c (B, tasks, H, W) is padded the same way as the image.
    """
    height, width = x.shape[-2:]
    c = pad_any_size(c) if c.ndim == 4 else c
    return net.forward(pad_any_size(x), c)[..., :height, :width]


# ----------------------------------------------------------------------------- parameter arithmetic


def conv_params(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * c_out * kernel * kernel + c_out


def linear_params(sizes: list[int]) -> int:
    """A stack of fully connected layers through `sizes` (weights and biases)."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def encoder_conv_params(width: int) -> int:
    return conv_params(3, width, 9) + conv_params(width, 2 * width, 3) + conv_params(2 * width, 4 * width, 3)


def residual_conv_params(width: int, blocks: int) -> int:
    return 2 * blocks * conv_params(4 * width, 4 * width, 3)


def decoder_conv_params(width: int) -> int:
    return conv_params(4 * width, 2 * width, 3) + conv_params(2 * width, width, 3)


def head_params(config: ModelConfig) -> int:
    return conv_params(config.width, output_channels(config), 9)


def norm_params(channels: int) -> int:
    """InstanceNorm's own affine: a scale and a shift per channel."""
    return 2 * channels


def encoder_channels(width: int) -> int:
    """Channels normalised in the encoder (w + 2w + 4w)."""
    return 7 * width


def residual_channels(width: int, blocks: int) -> int:
    return 2 * blocks * 4 * width


def decoder_channels(width: int) -> int:
    return 3 * width


def plain_branch_params(config: ModelConfig) -> int:
    """Residual blocks + decoder + output conv of a plain trunk (everything after the encoder)."""
    w, blocks = config.width, config.res_blocks
    convs = residual_conv_params(w, blocks) + decoder_conv_params(w) + head_params(config)
    return convs + norm_params(residual_channels(w, blocks) + decoder_channels(w))


def plain_encoder_params(width: int) -> int:
    return encoder_conv_params(width) + norm_params(encoder_channels(width))


def plain_johnson_params(config: ModelConfig) -> int:
    """One whole plain Johnson network (`PlainJohnson`): with o output channels,
    (180 + 288 R) w^2 + (273 + 24 R) w + 81 o w + o for width w and R residual blocks."""
    return plain_encoder_params(config.width) + plain_branch_params(config)
