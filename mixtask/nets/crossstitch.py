"""Soft parameter sharing: one Johnson column per task, joined by cross-stitch units.

Misra, Shrivastava, Gupta & Hebert (2016), "Cross-stitch Networks for Multi-task Learning", CVPR
(https://arxiv.org/abs/1604.03539). Each task, and reconstruction, has its own whole Johnson network
(`JohnsonTrunk`: InstanceNorm with affine, no FiLM); after every normed layer a cross-stitch unit replaces
each column's activation by a learned linear combination of all columns' activations at that layer:

    h'_k = sum_j alpha[k, j] h_j,   one K x K matrix per layer (K = tasks + 1 columns),

initialised near identity as in the paper (0.9 to a column's own activation, the other 0.1 shared out
evenly), so the columns start almost independent and learn how much to share.

Strengths and mixes (our reading; the paper has no mixes): the output is a blend of the columns' outputs,
weighted as `sharedenc` weighs its branches: task i by c_i, reconstruction by what is left, 1 - sum(c),
scaled down to sum 1 when the strengths add up to more. So c = 0 is the reconstruction column, a strength
is an exact interpolation with it, and a mix is an average of single-task outputs (`mixes` and
`continuous` hold in that sense). Every column runs for every sample: the units need all of them.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig, apply_head, forward_any_size, layer_shapes, run_layers
from mixtask.nets.sharedenc import branch_weights
from mixtask.nets.trunk import JohnsonTrunk, plain_johnson_params

OWN_SHARE = 0.9  # the cross-stitch initialisation of the paper: 0.9 own, 0.1 from the others


def stitch_init(columns: int) -> torch.Tensor:
    if columns == 1:
        return torch.ones(1, 1)
    other = (1 - OWN_SHARE) / (columns - 1)
    return torch.full((columns, columns), other) + (OWN_SHARE - other) * torch.eye(columns)


class CrossStitchNet(TaskNet):
    """columns[0] reconstructs, columns[i + 1] does task i; stitches[l] mixes them after normed layer l."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.columns = nn.ModuleList(JohnsonTrunk(config) for _ in range(config.num_tasks + 1))
        layers = len(layer_shapes(config))
        self.stitches = nn.Parameter(stitch_init(len(self.columns)).repeat(layers, 1, 1))  # (layers, K, K)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        columns = len(self.columns)

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:  # h: the columns stacked, (K * B, C, H, W)
            ys = torch.stack([column.layer(i, part) for column, part in zip(self.columns, h.chunk(columns))])
            stitched = torch.einsum("kj,jbchw->kbchw", self.stitches[i].to(ys.dtype), ys)
            return stitched.flatten(0, 1)

        # the residual adds of run_layers act on every column at once
        features = run_layers(x.repeat(columns, 1, 1, 1), layer, self.config.res_blocks).chunk(columns)
        weights = branch_weights(c)
        out = 0
        for k, (column, part) in enumerate(zip(self.columns, features)):
            y = apply_head(self.config, column.output(part), x)
            out = out + y * weights[:, k, None, None, None].to(y.dtype)
        return out

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """(tasks + 1) whole plain Johnson networks + one K x K cross-stitch matrix per normed layer."""
    columns = config.num_tasks + 1
    return columns * plain_johnson_params(config) + len(layer_shapes(config)) * columns**2
