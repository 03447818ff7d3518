"""Training: single tasks, then mixed tasks (paper, Sec. 3.3, Methods 1-3; losses of Table 1).

One task (or mix) per mini-batch, drawn uniformly from the jobs of the current stage;
reconstruction (task vector 0, L2 on the clean image) is one of them. `--schedule joint` instead
trains every job of the stage in each step, their losses combined by a `weighting` (equal,
Kendall et al.'s uncertainty, DWA, GradNorm) into one backward pass.

- Method 1: single tasks only.
- Method 2: mixes too, each trained with the sum of its members' own losses and targets.
- Method 3 (default): stage 1 trains single tasks for `stage1_steps`; then a frozen copy of the
  stage-1 model renders mixed targets on the fly (`mixtask.mixing`), and stage 2 trains single
  tasks and mixes together, mixes with L2 on the synthesised targets. `--synth DIR` adds mixed
  samples synthesised ahead by `mixtask synth` as further stage-2 jobs.

Losses (Table 1): L2 for recon, inpaint, denoise and synthesised mixes; L2 + PatchGAN for seg;
the perceptual loss against per-style Gram targets (computed once) for styles.

Checkpoints (`mixtask.training.checkpoint`) hold every state, so a resumed run continues bit-for-bit;
`mixtask.training.distributed` scales out with DDP under torchrun; the run ends by exporting a
self-describing safetensors file (`mixtask.weights.save_weights`).

Modules, in the order data flows: `options` (TrainOptions) -> `plan` (tasks, mixes, jobs) ->
`setup` (builds the `state.Run`) -> `loop` (steps via `step`, `batches` and `weighting`; `stages`,
`checkpointing`, `export`, `progress`, `preview`, `signals` around them).
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
