"""Shared encoder, task-specific decoders: the usual multi-task image translation network.

The baseline Takeda, Benitez & Yanai ("Training of Multiple and Mixed Tasks With A Single
Network Using Feature Modulation", ICPR 2020 workshops) set FiLM against: "a network
consisting of a shared encoder and multiple task-specific decoders", here on the Johnson
trunk (plain InstanceNorm with affine). The encoder (the three convs down to 1/4 resolution)
is shared; each task, and reconstruction, has its own residual blocks, up-sampling convs and
output conv. Its size grows by a whole branch per task (1.58 M parameters at width 32).

Strengths and mixes (our definition; the paper mixes only with FiLM): the output is a blend
of branch *outputs*. Task i gets weight c_i, reconstruction gets what is left, 1 - sum(c),
and when the strengths add up to more than 1 they are scaled down to sum 1:

    c = 0: the recon branch;  c_i = 0.6 alone: 0.6 task i + 0.4 recon;
    denoise=1, style1=1: half the denoise output plus half the style1 output.

So `continuous` and `mixes` hold in the sense that any vector gives an output, and a strength
is an exact linear interpolation with the input's reconstruction. A mix is an average, not the
paper's sequential composition: a trained mix (Methods 2 and 3) pulls the branches it blends
away from their own tasks, since nothing else in the network is specific to the mix.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig, forward_any_size
from mixtask.nets.trunk import (
    OutputHead,
    plain_branch_params,
    plain_decoder,
    plain_encoder,
    plain_encoder_params,
    plain_residual,
    sum_by_rows,
)


class Branch(nn.Module):
    """One task's own residual blocks, decoder and output conv."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.residual = plain_residual(config)
        self.decoder = plain_decoder(config)
        self.head = OutputHead(config)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.residual(h)), x)


def branch_weights(c: torch.Tensor) -> torch.Tensor:
    """(B, tasks) strengths -> (B, 1 + tasks) blend weights: recon first, then each task's."""
    c = c.float().clamp(0, 1)
    tasks = c / c.sum(dim=1, keepdim=True).clamp(min=1)
    recon = (1 - tasks.sum(dim=1, keepdim=True)).clamp(min=0)
    return torch.cat([recon, tasks], dim=1)


class SharedEncoderNet(TaskNet):
    """One shared encoder; branches[0] reconstructs, branches[i + 1] does task i (see module doc)."""

    mixes, continuous, task_maps = True, True, False
    unused_parameters = True  # a step trains only the branches its vectors weigh (DDP must know)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = plain_encoder(config)
        self.branches = nn.ModuleList(Branch(config) for _ in range(config.num_tasks + 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W).

        Each branch runs only on the samples that weigh it.
        """
        weights = branch_weights(c)
        h = self.encoder(x)

        def weighted_outputs():  # each branch on the rows that weigh it, generated one at a time
            for branch, weight in zip(self.branches, weights.unbind(dim=1)):
                rows = (weight > 0).nonzero().squeeze(1)
                if len(rows):
                    y = branch(h[rows], x[rows])
                    yield rows, y * weight[rows, None, None, None].to(y.dtype)

        return sum_by_rows(weighted_outputs(), len(x))

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """One plain encoder + (tasks + 1) branches of residual blocks, decoder and output conv."""
    return plain_encoder_params(config) + (config.num_tasks + 1) * plain_branch_params(config)
