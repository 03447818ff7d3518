"""Single-task networks: one whole plain Johnson network per task, and one for reconstruction.

The strong baseline of Takeda, Benitez & Yanai ("Training of Multiple and Mixed Tasks With A
Single Network Using Feature Modulation", ICPR 2020 workshops): nothing is shared, so no task
can interfere with another, at (tasks + 1) times the size of one Johnson network
(Johnson et al. 2016, https://arxiv.org/abs/1603.08155; InstanceNorm with its own affine).
All the networks live in one module, and one weights file, so the tools treat it like any
other architecture. The task vector only picks a network: all zeros is reconstruction, a
one-hot vector with value 1 is that task. Anything else (a mix, a strength between 0 and 1)
is a `MixtaskError`: `mixes` and `continuous` are both False.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.errors import MixtaskError
from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig, forward_any_size
from mixtask.nets.trunk import PlainJohnson, plain_johnson_params, sum_by_rows

NOT_A_SINGLE_TASK = "single-task networks cannot mix tasks or take strengths between 0 and 1"


def network_index(c: torch.Tensor) -> torch.Tensor:
    """(B, tasks) vectors -> (B,) network per sample: 0 for all zeros, i + 1 for task i at 1."""
    ones, zeros = c == 1, c == 0
    if not bool(((ones | zeros).all(dim=1) & (ones.sum(dim=1) <= 1)).all()):
        raise MixtaskError(NOT_A_SINGLE_TASK)
    return torch.where(ones.any(dim=1), ones.int().argmax(dim=1) + 1, 0)


class SingleTaskNets(TaskNet):
    """nets[0] reconstructs, nets[i + 1] does task i; each sample runs through its own network."""

    mixes, continuous, task_maps = False, False, False
    unused_parameters = True  # a step trains only the networks its vectors pick (DDP must know)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.nets = nn.ModuleList(PlainJohnson(config) for _ in range(config.num_tasks + 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks), zeros or one-hot."""
        index = network_index(c)
        if bool((index == index[0]).all()):  # the usual case: one task for the whole batch
            return self.nets[int(index[0])](x)

        def outputs():  # each network on the rows of its task, one at a time
            for i in index.unique().tolist():
                rows = (index == i).nonzero().squeeze(1)
                yield rows, self.nets[i](x[rows])

        return sum_by_rows(outputs(), len(x))

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """(tasks + 1) whole plain Johnson networks."""
    return (config.num_tasks + 1) * plain_johnson_params(config)
