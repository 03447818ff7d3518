"""EncIn: FiLM in the decoder half only, plain InstanceNorm in the encoder.

The ablation of Takeda, Benitez & Yanai, "Training of Multiple and Mixed Tasks With A Single
Network Using Feature Modulation" (ICPR 2020 workshops, https://doi.org/10.1007/978-3-030-68790-8_55),
described there as "FiLM only in the decoder, plain InstanceNorm in the encoder". Our reading,
on the same Johnson trunk as MixNet: the *encoder* is the three convs that bring the image to
1/4 resolution (conv9x9 and the two stride-2 convs); they are normalised by InstanceNorm with
its own learned affine and know nothing of the task. Everything after them, the residual
blocks and the two up-sampling convs (12 of MixNet's 15 norm layers, 1,376 of its 1,600
channels at width 32), keeps InstanceNorm + FiLM from the task vector. The encoder thus
computes task-independent features, and only the "decoder half" is modulated.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import (
    DECODER,
    ENCODER,
    RESIDUAL,
    ConvLayer,
    FiLMGenerator,
    ModelConfig,
    NormFiLM,
    film_pairs,
    forward_any_size,
    layer_relus,
    layer_shapes,
    run_layers,
)
from mixtask.nets.trunk import (
    OutputHead,
    head_params,
    linear_params,
    normed_params,
    plain_encoder,
    plain_encoder_params,
)


class EncInNet(TaskNet):
    """Plain-IN encoder; residual blocks and up-sampling convs with IN + FiLM (see module doc)."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        shapes = layer_shapes(config)
        self.encoder = plain_encoder(config)
        self.residual = nn.ModuleList(ConvLayer(*shape) for shape in shapes[RESIDUAL])
        self.decoder = nn.ModuleList(ConvLayer(*shape) for shape in shapes[DECODER])
        self.head = OutputHead(config)
        convs = [*self.residual, *self.decoder]
        relus = layer_relus(config)[ENCODER.stop :]
        self.norms = nn.ModuleList(NormFiLM(conv.conv.out_channels, relu) for conv, relu in zip(convs, relus))
        film_channels = sum(norm.channels for norm in self.norms)
        self.film = FiLMGenerator(config.num_tasks, 2 * film_channels, config.film_layers, config.film_hidden)

    def film_params(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per FiLM'd layer (gamma, beta), each (B, channels), as MixNet.film_params."""
        return film_pairs(self.film(c.float()), [norm.channels for norm in self.norms])

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        convs, film = [*self.residual, *self.decoder], self.film_params(c)

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:
            if i < ENCODER.stop:  # the plain encoder
                return self.encoder[i](h)
            j = i - ENCODER.stop
            return self.norms[j](convs[j](h), *film[j])

        return self.head(run_layers(x, layer, self.config.res_blocks), x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """Plain encoder + FiLM'd convs (no affine of their own) + output conv + FiLM generator."""
    modulated = layer_shapes(config)[ENCODER.stop :]
    film_channels = sum(c_out for _, c_out, _, _, _ in modulated)
    generator = [config.num_tasks] + [config.film_hidden] * (config.film_layers - 1) + [2 * film_channels]
    convs = normed_params(modulated, affine=False) + head_params(config)
    return plain_encoder_params(config) + convs + linear_params(generator)
