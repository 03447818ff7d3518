"""The state one training process holds (one per rank)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mixtask.training import distributed as ddp
from mixtask.training.options import TrainOptions
from mixtask.training.plan import Plan

RANK_SEED_STRIDE = 7919  # decorrelates the data streams of the ranks


@dataclass
class Run:
    """Everything a training process holds (mutable; one per rank)."""

    options: TrainOptions
    plan: Plan
    ctx: ddp.DistContext
    dtype: torch.dtype | None
    model: torch.nn.Module  # DDP-wrapped when distributed
    net: torch.nn.Module  # the bare network
    optimizer: torch.optim.Optimizer
    dataset: object
    sampler: object
    generators: dict[str, torch.Generator]
    corruptions: dict[str, Callable]
    disc: torch.nn.Module | None = None
    disc_optimizer: torch.optim.Optimizer | None = None
    deep_seg_head: torch.nn.Module | None = None  # --deep-seg-weight: 1x1 conv on the bottleneck -> mask logit
    perceptual: torch.nn.Module | None = None
    texture: torch.nn.Module | None = None  # --style-texture: training.losses.TextureLoss
    style_grams: dict[str, dict] = field(default_factory=dict)
    style_images: dict[str, torch.Tensor] = field(default_factory=dict)
    styled: tuple | None = None  # --style-loss teacher: (photos, cut-outs) renderings, 3 channels a style
    style_teachers: dict[str, dict] = field(default_factory=dict)  # style name -> the teacher's provenance
    teacher: torch.nn.Module | None = None
    folder: object | None = None
    scaler: torch.amp.GradScaler | None = None  # only for fp16 on CUDA
    step: int = 0
    wall_seconds: float = 0.0
    loss_scales: dict[str, float] = field(default_factory=dict)  # running mean of each job's loss
    ema: torch.nn.Module | None = None  # --ema-decay: torch's AveragedModel of `net`, what export writes
    weighting: torch.nn.Module | None = None  # schedule joint: training.weighting (its weights join `optimizer`)

    @property
    def device(self) -> str:
        return self.ctx.device

    @property
    def channels_last(self) -> bool:
        return self.device.startswith("cuda")


def rank_seed(options: TrainOptions, ctx: ddp.DistContext) -> int:
    return options.seed + RANK_SEED_STRIDE * ctx.rank
