"""The plain Johnson trunk the other architectures build on, and their parameter arithmetic.

Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer"
(https://arxiv.org/abs/1603.08155): the layers of `mixtask.nets.film.MixNet` (`layer_shapes`, reflection-
padded `ConvLayer`s, nearest x2 up-sampling), but normalised the usual way: InstanceNorm with its own
learned affine (Ulyanov et al. 2016, https://arxiv.org/abs/1607.08022), no FiLM. The output conv and
its head (`config.head`: the paper's "rgb" or our "gated", `mixtask.nets.film.output_conv`/`apply_head`)
are MixNet's, so a comparison varies only the conditioning and parameter counts compare like for like:
every InstanceNorm trunk is blind to its input's exposure, and the gated head is the fix for all alike.

Two layouts of it, whose state_dict keys trained weights depend on:
- `PlainJohnson` and its parts (`plain_encoder`, `plain_residual`, `plain_decoder`, `OutputHead`):
  nn.Sequential stages for encin, ccam, sharedenc and single, which take them whole;
- `JohnsonTrunk`: flat lists of convs and `AffineNorm`s, so that piggyback (masked weights) and topdown
  (modulated layers) can compute each layer their own way.

`sum_by_rows` puts the outputs of networks that each ran on some of a batch's samples (single, sharedenc)
back together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.nets.film import (
    DECODER,
    ENCODER,
    RESIDUAL,
    ConvLayer,
    ModelConfig,
    NormFiLM,
    Shape,
    apply_head,
    layer_relus,
    layer_shapes,
    output_channels,
    output_conv,
    run_layers,
)

# ----------------------------------------------------------------------------- nn.Sequential layout


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


def plain_encoder(config: ModelConfig) -> nn.Sequential:
    """conv9x9 3->w, conv3x3/2 w->2w, conv3x3/2 2w->4w: full to 1/4 resolution."""
    return nn.Sequential(*(ConvNorm(*shape) for shape in layer_shapes(config)[ENCODER]))


def plain_residual(config: ModelConfig) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(4 * config.width) for _ in range(config.res_blocks)))


def plain_decoder(config: ModelConfig) -> nn.Sequential:
    """Two nearest x2 up-samplings + conv3x3: 4w -> 2w -> w channels."""
    return nn.Sequential(*(ConvNorm(*shape) for shape in layer_shapes(config)[DECODER]))


class OutputHead(nn.Module):
    """`output_conv` and `apply_head` as one module: h (last decoder features) and x (the input) -> image."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.conv = output_conv(config)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return apply_head(self.config, self.conv(h), x)


class PlainJohnson(nn.Module):
    """One whole unconditioned Johnson network: x (B, 3, H, W), sides multiples of 4 -> image."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.encoder = plain_encoder(config)
        self.residual = plain_residual(config)
        self.decoder = plain_decoder(config)
        self.head = OutputHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.residual(self.encoder(x))), x)


# ----------------------------------------------------------------------------- per-layer layout


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


class JohnsonTrunk(nn.Module):
    """The Johnson convs with InstanceNorm + affine after each (no FiLM); ReLU where Johnson has one."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.res_blocks = config.res_blocks
        self.convs = nn.ModuleList(ConvLayer(*shape) for shape in layer_shapes(config))
        self.norms = nn.ModuleList(AffineNorm(conv.conv.out_channels) for conv in self.convs)
        self.relus = tuple(layer_relus(config))
        self.output = output_conv(config)

    def activate(self, i: int, y: torch.Tensor) -> torch.Tensor:
        return F.relu(y) if self.relus[i] else y

    def layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Normed layer i, unmodified: conv, norm with its affine, ReLU."""
        return self.activate(i, self.norms[i](self.convs[i](h)))

    def run(self, x: torch.Tensor, layer: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Encoder, residual blocks, decoder; `layer(i, h)` computes normed layer i. Returns the
        features before the output conv."""
        return run_layers(x, layer or self.layer, self.res_blocks)


# ----------------------------------------------------------------------------- parameter arithmetic


def conv_params(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    return c_in * c_out * kernel * kernel + (c_out if bias else 0)


def linear_params(sizes: list[int]) -> int:
    """A stack of fully connected layers through `sizes` (weights and biases)."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def normed_params(shapes: list[Shape], affine: bool = True) -> int:
    """Convs of these `layer_shapes`, each with its norm's own affine (a scale and a shift per channel)."""
    return sum(conv_params(c_in, c_out, k) + (2 * c_out if affine else 0) for c_in, c_out, k, _, _ in shapes)


def head_params(config: ModelConfig) -> int:
    return conv_params(config.width, output_channels(config), 9)


def plain_encoder_params(config: ModelConfig) -> int:
    return normed_params(layer_shapes(config)[ENCODER])


def plain_branch_params(config: ModelConfig) -> int:
    """Residual blocks + decoder + output conv of a plain trunk (everything after the encoder)."""
    shapes = layer_shapes(config)
    return normed_params(shapes[RESIDUAL]) + normed_params(shapes[DECODER]) + head_params(config)


def plain_johnson_params(config: ModelConfig) -> int:
    """One whole plain Johnson network (`PlainJohnson`, `JohnsonTrunk`): with o output channels,
    (180 + 288 R) w^2 + (273 + 24 R) w + 81 o w + o for width w and R residual blocks."""
    return plain_encoder_params(config) + plain_branch_params(config)


def sum_by_rows(parts: Iterable[tuple[torch.Tensor, torch.Tensor]], batch: int) -> torch.Tensor:
    """(rows, output of those rows) pairs -> (batch, ...): each part added at its rows (zero elsewhere)."""
    out = None
    for rows, y in parts:
        out = torch.zeros((batch, *y.shape[1:]), dtype=y.dtype, device=y.device) if out is None else out
        out = out.index_add(0, rows, y)
    return out
