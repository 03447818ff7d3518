"""Task Switching Network: one encoder-decoder whose decoder is switched by a task embedding.

Sun et al., "Task Switching Network for Multi-task Learning", ICCV 2021
(https://doi.org/10.1109/ICCV48922.2021.00818). Every task has a fixed code (here orthogonal: rows
of a seeded random orthogonal matrix, a buffer stored with the weights); a task-embedding network,
a StyleGAN-like mapping of fully connected layers with leaky ReLU, turns it into a latent; per
conditioned layer an affine map of the latent gives AdaIN's (gamma, beta) (one `FiLMGenerator`
layer for all of them, identity at init). The shared encoder (Johnson's three convs, plain
InstanceNorm + affine) feeds a U-Net-like decoder: Johnson's residual blocks and two up-sampling
steps whose convs also see the encoder features of their resolution (concatenated skips), every
decoder conv followed by InstanceNorm + AdaIN.

Our change for task vectors: the mapping's input is the c-weighted sum of the task codes,
sum_i c_i * code_i, so strengths are continuous and mixes are defined (c = 0, reconstruction,
is the zero code). The paper switches between single tasks, one code at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import (
    ENCODER,
    ConvLayer,
    FiLMGenerator,
    ModelConfig,
    NormFiLM,
    apply_head,
    film_pairs,
    forward_any_size,
    layer_relus,
    layer_shapes,
    output_conv,
)
from mixtask.nets.trunk import AffineNorm, conv_params, head_params, linear_params, plain_encoder_params

MAPPING_LAYERS = 3
CODE_SEED = 0


def code_size(config: ModelConfig) -> int:
    """Width of the task codes and of the mapping network (orthogonal codes need >= tasks)."""
    return max(config.width, config.num_tasks)


def orthogonal_codes(num_tasks: int, size: int) -> torch.Tensor:
    """(tasks, size) orthonormal rows, the same for every seed of the run (a fixed generator)."""
    gaussian = torch.randn(size, num_tasks, generator=torch.Generator().manual_seed(CODE_SEED))
    q, _ = torch.linalg.qr(gaussian)
    return q.T.contiguous()


def decoder_shapes(config: ModelConfig) -> list[tuple[int, int]]:
    """(in, out) channels of the AdaIN-conditioned 3x3 convs: residual blocks, then the two
    up-sampling convs, whose inputs are the up-sampled features and the encoder skip."""
    w = config.width
    return [(4 * w, 4 * w)] * (2 * config.res_blocks) + [(4 * w + 2 * w, 2 * w), (2 * w + w, w)]


class MappingNetwork(nn.Module):
    """Task vector -> latent: the c-weighted sum of the task codes through FC + leaky ReLU layers."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        size = code_size(config)
        self.register_buffer("codes", orthogonal_codes(config.num_tasks, size))
        self.layers = nn.ModuleList(nn.Linear(size, size) for _ in range(MAPPING_LAYERS))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        z = c.float() @ self.codes
        for layer in self.layers:
            z = F.leaky_relu(layer(z), 0.2)
        return z


class TaskSwitchingNet(TaskNet):
    """Plain encoder, AdaIN-switched U-Net decoder (see the module docstring)."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = nn.ModuleList(ConvLayer(*shape) for shape in layer_shapes(config)[ENCODER])
        self.encoder_norms = nn.ModuleList(AffineNorm(conv.conv.out_channels, relu=True) for conv in self.encoder)
        self.decoder = nn.ModuleList(ConvLayer(c_in, c_out, 3) for c_in, c_out in decoder_shapes(config))
        relus = layer_relus(config)[ENCODER.stop :]
        self.norms = nn.ModuleList(NormFiLM(conv.conv.out_channels, relu) for conv, relu in zip(self.decoder, relus))
        self.output = output_conv(config)
        self.channels = [norm.channels for norm in self.norms]
        self.mapping = MappingNetwork(config)
        self.adain = FiLMGenerator(code_size(config), 2 * sum(self.channels), layers=1, hidden=0)

    def adain_params(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per conditioned layer (gamma, beta), each (batch, channels)."""
        return film_pairs(self.adain(self.mapping(c)), self.channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        styles = iter(zip(self.decoder, self.norms, self.adain_params(c)))

        def conditioned(h: torch.Tensor) -> torch.Tensor:
            conv, norm, (gamma, beta) = next(styles)
            return norm(conv(h), gamma, beta)

        skips, h = [], x
        for conv, norm in zip(self.encoder, self.encoder_norms):
            h = norm(conv(h))
            skips.append(h)
        for _ in range(self.config.res_blocks):
            h = h + conditioned(conditioned(h))
        for skip in (skips[1], skips[0]):
            h = conditioned(torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], dim=1))
        return apply_head(self.config, self.output(h), x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """Encoder (+ affines), decoder convs, output conv, mapping layers, the AdaIN affine maps."""
    size, shapes = code_size(config), decoder_shapes(config)
    decoder = sum(conv_params(c_in, c_out, 3) for c_in, c_out in shapes)
    mapping = linear_params([size] * (MAPPING_LAYERS + 1))
    adain = linear_params([size, 2 * sum(c_out for _, c_out in shapes)])
    return plain_encoder_params(config) + decoder + head_params(config) + mapping + adain
