"""Piggyback: one frozen base network, a learned binary weight mask per task.

Mallya, Davis & Lazebnik, "Piggyback: Adapting a Single Network to Multiple Tasks by Learning
to Mask Weights", ECCV 2018 (https://arxiv.org/abs/1801.06519). The base is the plain Johnson
network (InstanceNorm + affine, no FiLM; `trunk.JohnsonTrunk`), trained on reconstruction
(c = 0) and then frozen. Each task then learns a real-valued mask per conv weight, initialised
to 1e-2 and thresholded at 5e-3 to a binary mask that multiplies the frozen weights; the
gradient passes the threshold straight through (Sec. 3). As the paper does for its
batch-normalised networks, each task also learns its own norm affine, stored as a zero-initialised
difference to the base's, so that a task's masks and affines at init give exactly the base
network. The paper's new per-task classifier has no counterpart here: the output conv is masked
like the others.

A task vector selects a network: all zeros -> the base, one-hot with value 1 -> that task.
Piggyback cannot mix tasks or take partial strengths. Training runs in two phases (the hook
`on_stage`, called by the training loop, and `base_then_tasks`, read by the training plan):
stage 1 trains the base on recon only, stage 2 only the masks and affines on the single tasks.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtask.errors import MixtaskError
from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig, apply_head, forward_any_size, layer_shapes, output_channels
from mixtask.nets.trunk import JohnsonTrunk, conv_params, plain_johnson_params

MASK_INIT = 1e-2
MASK_THRESHOLD = 5e-3
BASE = -1  # the selection of an all-zero task vector


class BinaryMask(torch.autograd.Function):
    """Real-valued mask -> {0, 1} (> 5e-3); straight-through gradient (Piggyback, Sec. 3)."""

    @staticmethod
    def forward(ctx, mask: torch.Tensor) -> torch.Tensor:
        return (mask > MASK_THRESHOLD).to(mask.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def cannot_mix(row: list[float]) -> MixtaskError:
    shown = ", ".join(f"{value:g}" for value in row)
    return MixtaskError(
        f"piggyback cannot mix tasks or use strengths between 0 and 1: give one task at 1, or none for recon "
        f"(got [{shown}])"
    )


def selections(c: torch.Tensor, num_tasks: int) -> list[int]:
    """Per sample: BASE for an all-zero vector, i for task i at strength 1; MixtaskError otherwise."""
    if c.dim() != 2 or c.shape[1] != num_tasks:
        raise MixtaskError(f"piggyback takes task vectors of shape (batch, {num_tasks}), not {tuple(c.shape)}")
    chosen = []
    for row in c.detach().float().cpu().tolist():
        active = [i for i, value in enumerate(row) if value != 0]
        if len(active) > 1 or (active and row[active[0]] != 1):
            raise cannot_mix(row)
        chosen.append(active[0] if active else BASE)
    return chosen


class PiggybackNet(TaskNet):
    """A frozen plain Johnson base; per task, binary masks on its conv weights and norm affines."""

    mixes, continuous, task_maps = False, False, False
    base_then_tasks = True  # training: stage 1 the base on recon, stage 2 the masks on the tasks
    unused_parameters = True  # a step uses one task's masks (DDP must know)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.trunk = JohnsonTrunk(config)
        self.channels = [norm.channels for norm in self.trunk.norms]
        self.masks = nn.ModuleList(
            nn.ParameterList(nn.Parameter(torch.full_like(conv.weight, MASK_INIT)) for conv in self.base_convs())
            for _ in range(config.num_tasks)
        )
        self.affine_deltas = nn.Parameter(torch.zeros(config.num_tasks, 2, sum(self.channels)))
        self.stage: int | None = None

    def base_convs(self) -> list[nn.Conv2d]:
        return [layer.conv for layer in (*self.trunk.convs, self.trunk.output)]

    def on_stage(self, stage: int) -> None:
        """Training hook: stage 1 trains only the base, stage 2 only the masks and affines."""
        if stage == self.stage:
            return
        self.stage = stage
        self.trunk.requires_grad_(stage == 1)
        self.masks.requires_grad_(stage != 1)
        self.affine_deltas.requires_grad_(stage != 1)

    def task_weights(self, task: int) -> list[torch.Tensor]:
        """Conv weights of a selection: the base's, or the base's times the task's binary masks."""
        weights = [conv.weight for conv in self.base_convs()]
        if task == BASE:
            return weights
        return [weight * BinaryMask.apply(mask) for weight, mask in zip(weights, self.masks[task])]

    def task_affines(self, task: int) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per layer, the task's (delta gamma, delta beta) to the base affine; None for the base."""
        if task == BASE:
            return [None] * len(self.channels)
        gammas, betas = self.affine_deltas[task]
        return list(zip(gammas.split(self.channels), betas.split(self.channels)))

    def run(self, x: torch.Tensor, task: int) -> torch.Tensor:
        weights, affines = self.task_weights(task), self.task_affines(task)
        trunk = self.trunk

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:
            return trunk.activate(i, trunk.norms[i](trunk.convs[i].run(h, weights[i]), affines[i]))

        raw = trunk.output.run(trunk.run(x, layer), weights[-1])
        return apply_head(self.config, raw, x)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks), zeros or one-hot."""
        chosen = selections(c, self.config.num_tasks)
        if len(set(chosen)) == 1:  # the usual case: one network for the whole batch
            return self.run(x, chosen[0])
        out = None
        for task in sorted(set(chosen)):
            rows = torch.tensor([i for i, t in enumerate(chosen) if t == task], device=x.device)
            y = self.run(x[rows], task)
            out = y.new_zeros((len(x), *y.shape[1:])) if out is None else out
            out = out.index_copy(0, rows, y)
        return out

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """The base, plus per task a mask value per conv weight and a (gamma, beta) per norm channel."""
    shapes = layer_shapes(config)
    masks = sum(conv_params(c_in, c_out, k, bias=False) for c_in, c_out, k, _, _ in shapes)
    masks += conv_params(config.width, output_channels(config), 9, bias=False)
    affines = 2 * sum(c_out for _, c_out, _, _, _ in shapes)
    return plain_johnson_params(config) + config.num_tasks * (masks + affines)
