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

The package's public names load lazily (as `mixtask.data`'s do): `import mixtask.training.options` (the CLI's
defaults and checks) then needs no torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Batch": "mixtask.training.batches",
    "add_synthesized_target": "mixtask.training.batches",
    "make_batch": "mixtask.training.batches",
    "to_device": "mixtask.training.batches",
    "checkpoint_state": "mixtask.training.checkpointing",
    "restore": "mixtask.training.checkpointing",
    "write_checkpoint": "mixtask.training.checkpointing",
    "STAGE1_NAME": "mixtask.training.export",
    "WEIGHTS_NAME": "mixtask.training.export",
    "export": "mixtask.training.export",
    "provenance": "mixtask.training.export",
    "TrainResult": "mixtask.training.loop",
    "export_snapshot": "mixtask.training.loop",
    "open_run": "mixtask.training.loop",
    "train": "mixtask.training.loop",
    "MIX_METHODS": "mixtask.training.options",
    "PRECISIONS": "mixtask.training.options",
    "StyleSpec": "mixtask.training.options",
    "TrainOptions": "mixtask.training.options",
    "check_options": "mixtask.training.options",
    "default_command": "mixtask.training.options",
    "parse_style": "mixtask.training.options",
    "resume_options": "mixtask.training.options",
    "stage1_steps": "mixtask.training.options",
    "Job": "mixtask.training.plan",
    "Plan": "mixtask.training.plan",
    "build_plan": "mixtask.training.plan",
    "write_preview": "mixtask.training.preview",
    "LOG_NAME": "mixtask.training.progress",
    "RunLog": "mixtask.training.progress",
    "setup_run": "mixtask.training.setup",
    "enter_stage2": "mixtask.training.stages",
    "Run": "mixtask.training.state",
    "StepResult": "mixtask.training.step",
    "loss_scale": "mixtask.training.step",
    "optimize": "mixtask.training.step",
    "prepare": "mixtask.training.step",
    "train_step": "mixtask.training.step",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixtask.training' has no attribute {name!r}")
