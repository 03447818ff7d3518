"""Training, the public entry point: `train(TrainOptions(...))` (paper, Sec. 3.3, Methods 1-3).

The work is done in the `mixtask.training` package (one job per module); this module keeps the
names callers and tests import from `mixtask.train`.
"""

from __future__ import annotations

from mixtask.training.batches import Batch, add_synthesized_target, make_batch, to_device
from mixtask.training.checkpointing import checkpoint_state, restore, write_checkpoint
from mixtask.training.export import STAGE1_NAME, WEIGHTS_NAME, export, provenance
from mixtask.training.loop import TrainResult, export_snapshot, open_run, train
from mixtask.training.options import (
    MIX_METHODS,
    PRECISIONS,
    StyleSpec,
    TrainOptions,
    check_options,
    default_command,
    parse_style,
    resume_options,
    stage1_steps,
)
from mixtask.training.plan import Job, Plan, build_plan
from mixtask.training.preview import write_preview
from mixtask.training.progress import LOG_NAME, RunLog
from mixtask.training.setup import setup_run
from mixtask.training.stages import enter_stage2
from mixtask.training.state import Run
from mixtask.training.step import StepResult, loss_scale, optimize, prepare, train_step

__all__ = [
    "LOG_NAME",
    "MIX_METHODS",
    "PRECISIONS",
    "STAGE1_NAME",
    "WEIGHTS_NAME",
    "Batch",
    "Job",
    "Plan",
    "Run",
    "RunLog",
    "StepResult",
    "StyleSpec",
    "TrainOptions",
    "TrainResult",
    "add_synthesized_target",
    "build_plan",
    "check_options",
    "checkpoint_state",
    "default_command",
    "enter_stage2",
    "export",
    "export_snapshot",
    "loss_scale",
    "make_batch",
    "open_run",
    "optimize",
    "parse_style",
    "prepare",
    "provenance",
    "restore",
    "resume_options",
    "setup_run",
    "stage1_steps",
    "to_device",
    "train",
    "train_step",
    "write_checkpoint",
    "write_preview",
]
