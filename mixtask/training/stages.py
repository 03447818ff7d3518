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


def tell_stage(run: Run) -> None:
    """Call the network's optional `on_stage(stage)` hook (Piggyback freezes its base in stage 2)."""
    hook = getattr(run.net, "on_stage", None)
    if hook is not None:
        hook(run.plan.stage_at(run.step))


def enter_stage2(run: Run) -> None:
    """Method 3: freeze the stage-1 model (it renders mixed targets) and export it for `synth`.

    Called before every step, so it also tells the network the stage of the step to come."""
    tell_stage(run)
    if run.plan.stage_at(run.step) == 1 or run.teacher is not None or run.options.style_loss == "teacher":
        return  # with the style teacher, mixes take their style part from its renderings: no stage-1 model
    run.teacher = frozen_copy(run.net)
    if run.ctx.is_main:
        export(run, Path(run.options.out) / STAGE1_NAME, stage=1)
