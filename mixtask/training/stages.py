"""Method 3's stages: at the switch, freeze the stage-1 model and export it."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from mixtask.training.export import STAGE1_NAME, export
from mixtask.training.state import Run


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    teacher = copy.deepcopy(net).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def enter_stage2(run: Run) -> None:
    """Method 3: freeze the stage-1 model (it renders mixed targets) and export it for `synth`."""
    if run.plan.stage_at(run.step) == 1 or run.teacher is not None:
        return
    run.teacher = frozen_copy(run.net)
    if run.ctx.is_main:
        export(run, Path(run.options.out) / STAGE1_NAME, stage=1)
