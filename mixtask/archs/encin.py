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

from mixtask.archs.blocks import (
    OutputHead,
    decoder_channels,
    decoder_conv_params,
    forward_any_size,
    head_params,
    linear_params,
    plain_encoder,
    plain_encoder_params,
    residual_channels,
    residual_conv_params,
)
from mixtask.model import ConvLayer, FiLMGenerator, ModelConfig, NormFiLM


class EncInNet(nn.Module):
    """Plain-IN encoder; residual blocks and up-sampling convs with IN + FiLM (see module doc)."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.encoder = plain_encoder(w)
        self.residual = nn.ModuleList(ConvLayer(4 * w, 4 * w, 3) for _ in range(2 * config.res_blocks))
        self.decoder = nn.ModuleList([ConvLayer(4 * w, 2 * w, 3, upsample=True), ConvLayer(2 * w, w, 3, upsample=True)])
        self.head = OutputHead(config)
        convs = [*self.residual, *self.decoder]
        relus = [True, False] * config.res_blocks + [True] * 2
        self.norms = nn.ModuleList(NormFiLM(conv.conv.out_channels, relu) for conv, relu in zip(convs, relus))
        self.film_channels = sum(norm.channels for norm in self.norms)
        self.film = FiLMGenerator(config.num_tasks, 2 * self.film_channels, config.film_layers, config.film_hidden)

    def film_params(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (gamma, beta), each (B, channels), as MixNet.film_params (gamma read as 1 + output)."""
        out = self.film(c.float())
        gammas, betas = out[:, : self.film_channels] + 1.0, out[:, self.film_channels :]
        sizes = [norm.channels for norm in self.norms]
        return list(zip(gammas.split(sizes, dim=1), betas.split(sizes, dim=1)))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        film = iter(zip(self.norms, self.film_params(c)))

        def conv_norm(conv: ConvLayer, h: torch.Tensor) -> torch.Tensor:
            norm, (gamma, beta) = next(film)
            return norm(conv(h), gamma, beta)

        h = self.encoder(x)
        for first, second in zip(self.residual[0::2], self.residual[1::2]):
            h = h + conv_norm(second, conv_norm(first, h))
        for conv in self.decoder:
            h = conv_norm(conv, h)
        return self.head(h, x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self, x, c)


def parameter_count(config: ModelConfig) -> int:
    """Plain encoder + FiLM'd convs (no affine of their own) + output conv + FiLM generator."""
    w, blocks = config.width, config.res_blocks
    film_channels = residual_channels(w, blocks) + decoder_channels(w)
    generator = [config.num_tasks] + [config.film_hidden] * (config.film_layers - 1) + [2 * film_channels]
    convs = residual_conv_params(w, blocks) + decoder_conv_params(w) + head_params(config)
    return plain_encoder_params(w) + convs + linear_params(generator)
