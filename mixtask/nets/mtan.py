"""Task attention on a shared trunk: MTAN's soft attention masks, one set per task.

Liu, Johns & Davison (2019), "End-to-End Multi-Task Learning with Attention", CVPR
(https://arxiv.org/abs/1803.10704; the paper's reference 24). One shared Johnson trunk (`JohnsonTrunk`:
InstanceNorm with affine, no FiLM); after each normed layer of the encoder and of the residual blocks, a
per-task attention module looks at the shared features and gates them element-wise:

    a_k(h) = sigmoid(conv1x1(ReLU(conv1x1(h)))),   h <- h * a(h),

MTAN's module (1x1 convs, a sigmoid mask over the shared features), here without its batch norms (the
trunk's InstanceNorms follow) and feeding the gated features on through one shared decoder and output
conv, as the issue asks (MTAN itself keeps a task-specific branch per task).

Strengths and mixes (our reading): the mask applied is a blend of the columns' masks, weighted as
`sharedenc` weighs its branches: reconstruction (k = 0, a mask of its own) by 1 - sum(c), task i by c_i,
scaled down to sum 1 when the strengths add up to more. So strengths are continuous and tasks mix.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import RESIDUAL, ModelConfig, apply_head, forward_any_size, layer_shapes, run_layers
from mixtask.nets.sharedenc import branch_weights
from mixtask.nets.trunk import JohnsonTrunk, conv_params, plain_johnson_params


def attended_layers(config: ModelConfig) -> range:
    """The normed layers whose output gets a mask: the encoder's and the residual blocks'."""
    return range(RESIDUAL.indices(len(layer_shapes(config)))[1])


class Attention(nn.Module):
    """MTAN's attention module on C channels: two 1x1 convs, ReLU between, a sigmoid mask out."""

    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.convs(h))


class MTANNet(TaskNet):
    """A shared trunk; attention[l][k] masks normed layer l's output for column k (0: recon, i + 1: task i)."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.trunk = JohnsonTrunk(config)
        shapes = layer_shapes(config)
        self.attention = nn.ModuleList(
            nn.ModuleList(Attention(shapes[i][1]) for _ in range(config.num_tasks + 1)) for i in attended_layers(config)
        )

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        weights = branch_weights(c)  # (B, K)
        active = (weights > 0).any(dim=0).tolist()  # the columns this batch weighs at all

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:
            y = self.trunk.layer(i, h)
            if i >= len(self.attention):
                return y
            mask = sum(
                module(y) * weights[:, k, None, None, None].to(y.dtype)
                for k, module in enumerate(self.attention[i])
                if active[k]
            )
            return y * mask

        return apply_head(self.config, self.trunk.output(run_layers(x, layer, self.config.res_blocks)), x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """One plain Johnson network + (tasks + 1) attention modules (two C x C 1x1 convs) per attended layer."""
    shapes = layer_shapes(config)
    per_column = sum(2 * conv_params(shapes[i][1], shapes[i][1], 1) for i in attended_layers(config))
    return plain_johnson_params(config) + (config.num_tasks + 1) * per_column
