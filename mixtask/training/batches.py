"""Mini-batches: a job's input, task vectors and targets, moved to the device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from mixtask.mixing import MixRule, corrupt_input, make_stylizer, render_target
from mixtask.training import distributed as ddp
from mixtask.training.plan import Job
from mixtask.training.state import Run


@dataclass
class Batch:
    """One mini-batch: network input, task vectors, the clean images, mask and pixel target."""

    input: torch.Tensor
    vector: torch.Tensor
    clean: torch.Tensor
    mask: torch.Tensor | None = None
    target: torch.Tensor | None = None
    styled: torch.Tensor | None = None  # --style-loss teacher: the teacher's renderings of `clean`, 3 channels a style
    strengths: torch.Tensor | None = None  # --partial-strengths: (B,) each sample's strength below 1, else None


def teacher_styled(run: Run, rule: MixRule | None) -> bool:
    """Whether a job's batch carries the style teacher's renderings (a style member under --style-loss teacher)."""
    return run.options.style_loss == "teacher" and rule is not None and bool(rule.styles)


def draw_clean(sampler, rule: MixRule | None, batch: int, styled: bool = False):
    """Clean images (with styled channels when `styled`), plus object masks when seg is a member."""
    if rule is not None and rule.needs_mask:
        return sampler.segmentation(batch, styled=styled)
    return sampler.clean(batch, styled=styled), None


def make_batch(run: Run, job: Job, sampler, generator: torch.Generator, batch: int) -> Batch:
    """Input, vector and targets of one job (the data-preparation part of a step)."""
    if job.source == "folder":
        inputs, targets = run.folder.sample(job.rule.label, batch, generator)
        return Batch(inputs, _vectors(job, batch), targets, None, targets)
    clean, mask = draw_clean(sampler, job.rule, batch, styled=teacher_styled(run, job.rule))
    clean, styled = (clean[:, :3], clean[:, 3:]) if clean.shape[1] > 3 else (clean, None)
    inputs = clean if job.rule is None else corrupt_input(job.rule, clean, run.corruptions, generator)
    target = clean if job.source == "recon" else None
    return Batch(inputs, _vectors(job, batch), clean, mask, target, styled)


def _vectors(job: Job, batch: int) -> torch.Tensor:
    return torch.tensor(job.vector, dtype=torch.float32).expand(batch, -1).contiguous()


def to_device(batch: Batch, run: Run) -> Batch:
    memory_format = torch.channels_last if run.channels_last else torch.contiguous_format

    def move(x):
        if x is None or x.dim() != 4:
            return None if x is None else x.to(run.device, non_blocking=True)
        return x.to(run.device, non_blocking=True).contiguous(memory_format=memory_format)

    tensors = (batch.input, batch.vector, batch.clean, batch.mask, batch.target, batch.styled, batch.strengths)
    return Batch(*(move(x) for x in tensors))


def stylizer(run: Run) -> Callable:
    """`stylize(images, style_name)` with the frozen stage-1 model (sequential mixing)."""
    return make_stylizer(run.teacher, run.plan.task_set, lambda: ddp.autocast(run.device, run.dtype))


def teacher_rendering(run: Run, batch: Batch, name: str) -> torch.Tensor:
    """The style teacher's rendering of the batch's clean images in style `name` (--style-loss teacher)."""
    index = [spec.name for spec in run.options.styles].index(name)
    return batch.styled[:, 3 * index : 3 * index + 3].float()


def teacher_renderings(run: Run, batch: Batch) -> Callable:
    """`stylize(images, style_name)` for `render_target`: the teacher's rendering of the batch's clean images."""

    def stylize(images, name: str):
        if images is not batch.clean:  # a rendering of a rendering: mixes of two styles are refused anyway
            raise ValueError("the style teacher rendered the clean images only")
        return teacher_rendering(run, batch, name)

    return stylize


def add_synthesized_target(run: Run, job: Job, batch: Batch) -> Batch:
    """Method 3: the mix's target, its style part rendered by the stage-1 model (the paper) or taken from the
    style teacher's renderings (--style-loss teacher); on the device, after the move."""
    if job.source != "synthesized":
        return batch
    stylize = teacher_renderings(run, batch) if teacher_styled(run, job.rule) else stylizer(run)
    return replace(batch, target=render_target(job.rule, batch.clean, batch.mask, stylize))
