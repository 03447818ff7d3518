"""Deterministic held-out evaluation of a weights file (paper, Sec. 4: Table 3 and Fig. 8).

Every task of the weights' TaskSet, and every mix it was trained on, is scored on fixed samples
of one data split: seeded crops, composites and corruptions, so two runs give the same numbers.
Which metrics apply is decided by the task's *kind* (registry `SECTIONS`), never by its name:

- recon, inpaint, denoise, seg and mixes: PSNR, SSIM, MSE in ImageNet-normalised space against
  the target; inpaint/denoise also PSNR over the damaged pixels only; seg (and mixes with seg)
  also the IoU of the object read from the cut-out output, on composites (exact masks) and,
  separately, on photos with pseudo-label masks;
- style: relative Gram distance to the style image (VGG), relative relu3_3 distance to the input
  and a Fréchet distance on EfficientNet-Lite0 features against random crops of the style image.

Context rows put each number in perspective: the identity (input as output) everywhere, and the
classical baselines of `mixtask.evaluation.baselines`. `strength_sweep` scores each task at strengths
0, 0.2, ..., 1 and says whether its metric moves monotonically (the paper's Fig. 8).
What the model's architecture cannot do (mixes, strengths between 0 and 1; `capabilities`)
is skipped and reported as "n/a", not scored as a failure.

This module runs an evaluation; `eval_inputs` holds what it scores on (options, samples, backbones,
style references), `eval_groups` the sections and the sweep, `eval_report` the tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from mixtask.errors import MixtaskError
from mixtask.evaluation.groups import (
    SECTIONS,
    SWEEP_STRENGTHS,
    Group,
    add_member_ratios,
    mix_group,
    recon_group,
    sweep_task,
)
from mixtask.evaluation.inputs import (
    Backbones,
    Context,
    EvalOptions,
    load_backbones,
    load_styles,
    make_samples,
    saliency_teacher,
)
from mixtask.nets.capabilities import not_applicable, of_class

__all__ = ["SWEEP_STRENGTHS", "Backbones", "EvalOptions", "load_model", "run_evaluation", "write_json"]

FD_LABEL = "FD-EffNetLite0, not comparable to published FID"
Log = Callable[[str], None]


def load_model(path: Path | None):
    """(model, WeightsInfo) of a weights file; tests replace this to inject a model."""
    from mixtask.weights import load_weights

    return load_weights(path)


# ----------------------------------------------------------------------------- the run


def _split_notes(split: str) -> list[str]:
    if split == "train":
        return ["split 'train': these samples were seen in training; the numbers are NOT held-out"]
    return []


def selected(task_set, can, only: tuple[str, ...]) -> tuple[list, list]:
    """The tasks and trained mixes to score: all of them, or those named by `--only` (unknown names refused)."""
    tasks, mixes = list(task_set.tasks), list(task_set.mixes if can.mixes else ())
    if not only:
        return tasks, mixes
    names = {task.name for task in tasks} | {"+".join(mix) for mix in mixes}
    unknown = [name for name in only if name not in names]
    if unknown:
        known = ", ".join(sorted(names))
        raise MixtaskError(f"--only: unknown task or mix {', '.join(unknown)} (this model has: {known})")
    return [task for task in tasks if task.name in only], [mix for mix in mixes if "+".join(mix) in only]


def _all_groups(ctx: Context, log: Log) -> list[Group]:
    groups = [recon_group(ctx)]
    tasks, mixes = selected(ctx.task_set, ctx.can, ctx.options.only)
    for task in tasks:
        log(f"evaluating {task.name}")
        groups += SECTIONS[task.kind](ctx, task)
    for mix in mixes:
        log(f"evaluating mix {'+'.join(mix)}")
        groups += [group for group in [mix_group(ctx, mix)] if group is not None]
    add_member_ratios(groups)
    return groups


def _strength_sweep(ctx: Context, log: Log) -> list[dict]:
    if not ctx.can.continuous:  # n/a rows: the architecture takes strengths 0 and 1 only
        na = {"metric": "n/a", "values": [], "direction": "n/a", "monotonic": None, "reason": ctx.can.not_continuous}
        return [{"task": task.name, **na} for task in ctx.task_set.tasks]
    rows = []
    for task in selected(ctx.task_set, ctx.can, ctx.options.only)[0]:
        log(f"strength sweep of {task.name}")
        rows.append(sweep_task(ctx, task))
    return [row for row in rows if row is not None]


def run_evaluation(options: EvalOptions, backbones: Backbones | None = None, log: Log | None = None) -> dict:
    """Evaluate every task and trained mix of `options.weights`; returns the JSON-ready result."""
    log = log or (lambda message: None)
    options.check()
    model, info = load_model(options.weights)
    model = model.to(options.device, memory_format=torch.channels_last).eval()
    can = of_class(info.config.arch, type(model))
    tasks, _ = selected(info.task_set, can, options.only)  # refuses unknown --only names before any work
    notes = _split_notes(options.split)
    log(f"sampling {options.count} fixed examples per task from the {options.split} split")
    samples = make_samples(options, notes)
    if backbones is None:
        scored = {part for name in options.only for part in name.split("+")} or {task.name for task in tasks}
        has_style = any(task.kind == "style" and task.name in scored for task in info.task_set.tasks)
        backbones = load_backbones(options) if has_style else Backbones()
    ctx = Context(model, info.task_set, options, samples, backbones, {}, notes + backbones.notes, can=can, info=info)
    ctx.styles = load_styles(ctx, info.provenance)
    if any(task.kind == "seg" for task in tasks):
        ctx.saliency = saliency_teacher(ctx.notes)
    groups = _all_groups(ctx, log)
    sweep = _strength_sweep(ctx, log) if options.strength_sweep else []
    skipped = {part: why for part, why in not_applicable(can).items() if options.strength_sweep or part == "mixes"}
    return _result(options, info, groups, sweep, ctx.notes) | {"arch": can.arch, "not_applicable": skipped}


def _result(options: EvalOptions, info, groups: list[Group], sweep: list[dict], notes: list[str]) -> dict:
    return {
        "weights": str(info.path),
        "data": str(options.data),
        "split": options.split,
        "held_out": options.split != "train",
        "size": options.size,
        "count": options.count,
        "seed": options.seed,
        "fd_label": FD_LABEL,
        "fd_samples": options.count,
        "notes": notes,
        "groups": [asdict(group) for group in groups],
        "sweep": sweep,
    }


def write_json(result: dict, path: Path) -> None:
    from mixtask.fileio import write_bytes_atomic

    write_bytes_atomic(Path(path), (json.dumps(result, indent=2) + "\n").encode())
